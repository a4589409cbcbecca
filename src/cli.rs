//! Command-line interface: clap arguments → validated options, the run loop
//! over inputs, the stats lines on stderr and the exit codes. No clap type
//! leaves this module.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cloudwatch::checkpoint::Checkpoint;
use crate::cloudwatch::fetch::{FetchOptions, Fetcher};
use crate::engine::{Engine, EngineOptions, InputHead};
use crate::extract::Stats;
use crate::filter::{self, Filter, FilterSpec};
use crate::findings::{self, Thresholds};
use crate::follow;
use crate::iam::{self, CorrelateOptions, Correlator, IamIndex};
use crate::message::Catalog;
use crate::name::Name;
use crate::pipeline::{Detected, FormatChoice, MessageText, ParseOptions};
use crate::prefetch::{prefetch, prefetching};
use crate::prefix::{self, Prefix};
use crate::reader::{EventSink, Feed, LiveOptions, Reader, RunShared};
use crate::session::{Session, Stitcher};
use crate::sink::auth_event::Part;
use crate::sink::background::BackgroundWriter;
use crate::sink::{
    cef, ecs, jsonl, ocsf, sessions as session_sink, summary as summary_sink, table,
};
use crate::source::{self, InputSpec};
use crate::summary;

/// Exit codes (documented in README).
pub mod exit {
    /// Every input was read and recognised.
    pub const OK: i32 = 0;
    /// An input could not be read completely (missing file, I/O error,
    /// truncated gzip); what was read was still processed.
    pub const INPUT_ERROR: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// An input's format could not be recognised: nothing was parsed from it.
    pub const UNRECOGNISED: i32 = 3;
    /// Writing the output failed (other than a closed pipe).
    pub const OUTPUT_ERROR: i32 = 4;
    /// `summary --fail-on-findings` and there are findings.
    pub const FINDINGS: i32 = 5;
}

#[derive(Parser, Debug)]
#[command(
    name = "pgtrail",
    version,
    about = "PostgreSQL connection logs → an audit trail",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every connection and authentication record as one JSON event per line.
    Parse(ParseArgs),
    /// One record per connection attempt (session), searchable.
    Audit(AuditArgs),
    /// Counts per user, client, failure class, server and database, and findings.
    Summary(SummaryArgs),
    /// List the log_line_prefix presets auto-detection tries.
    Presets,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormatArg {
    Auto,
    Stderr,
    Csvlog,
    Jsonlog,
    Syslog,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Debug)]
struct InputArgs {
    /// Log files or directories (recursive); `-` or nothing reads stdin.
    /// gzip is detected by content.
    inputs: Vec<PathBuf>,
    /// Record format of the logs; auto-detected per input by default.
    #[arg(long, value_enum, default_value = "auto")]
    log_format: LogFormatArg,
    /// The server's log_line_prefix (as `SHOW log_line_prefix` prints it).
    #[arg(long, conflicts_with = "preset")]
    prefix: Option<String>,
    /// A named prefix (see `pgtrail presets`).
    #[arg(long)]
    preset: Option<String>,
    /// Label for the `server` field instead of the one derived from the file name.
    #[arg(long)]
    server: Option<String>,
    /// Skip (and count) physical lines longer than this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_line_bytes: usize,
    /// Do not print the per-input stats lines.
    #[arg(long, short)]
    quiet: bool,
    /// Threads that work (default: the number of CPUs): all of them decode,
    /// one also runs the in-order stage, and the output is written on a
    /// thread of its own; 1 does everything on one thread (the file reader
    /// and gzip stage aside).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// Bytes per unit of parallel work (tuning and tests).
    #[arg(long, default_value_t = 1 << 19, hide = true)]
    chunk_bytes: usize,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// The live CloudWatch Logs source (README, "Reading from CloudWatch Logs").
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "CloudWatch Logs")]
struct CloudArgs {
    /// Read this log group (repeatable), e.g. /aws/rds/instance/mydb/postgresql.
    #[arg(long, value_name = "NAME")]
    log_group: Vec<String>,
    /// Read the PostgreSQL log groups (…/postgresql) and the
    /// …/iam-db-auth-error groups whose names start with PREFIX (repeatable).
    #[arg(long, value_name = "PREFIX")]
    log_group_prefix: Vec<String>,
    /// Only these log streams (repeatable; for RDS, the instance).
    #[arg(long, value_name = "NAME", conflicts_with = "log_stream_prefix")]
    log_stream: Vec<String>,
    /// Only the log streams whose names start with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    log_stream_prefix: Option<String>,
    /// AWS profile (default: AWS_PROFILE, else the default chain).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Endpoint of a CloudWatch Logs compatible service (AWS_ENDPOINT_URL also works).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Client-side limit on CloudWatch Logs requests per second (all together).
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    rate_limit: f64,
    /// Keep going: poll CloudWatch for new events (with --log-group), or,
    /// for `audit` on one log file, read it as it grows (like `tail -f`)
    /// and write each session, flushed, as it ends (SIEM logons as soon as
    /// established; attempts not authorized within 10 minutes as abandoned).
    #[arg(long)]
    follow: bool,
    /// Time between polls with --follow.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    poll_interval: String,
    /// How far back each poll re-reads, to catch events ingested late.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    overlap: String,
    /// Per-stream progress file: resume where the last run stopped.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Write the output to FILE (replacing it); with --checkpoint, FILE is
    /// cut back to the length the checkpoint recorded (0 for a new one) and
    /// appended to: exactly-once after a crash.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Events per FilterLogEvents page (tests, tuning).
    #[arg(long, value_name = "N", default_value_t = 10_000, hide = true)]
    page_size: i32,
    /// Attempts per request before a page is retried from its token (tests).
    #[arg(long, value_name = "N", default_value_t = 8, hide = true)]
    max_attempts: u32,
    /// Stop after this many polls (with --follow).
    #[arg(long, value_name = "N", hide = true)]
    max_polls: Option<u64>,
}

impl CloudArgs {
    /// A log group is named: the run reads CloudWatch Logs.
    fn is_live(&self) -> bool {
        !self.log_group.is_empty() || !self.log_group_prefix.is_empty()
    }

    /// What to fetch and how to connect, as the command line says.
    fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            groups: self.log_group.clone(),
            group_prefixes: self.log_group_prefix.clone(),
            streams: self.log_stream.clone(),
            stream_prefix: self.log_stream_prefix.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            rate_limit: self.rate_limit,
            parallel: 4,
            page_size: self.page_size,
            max_attempts: self.max_attempts,
            progress: true,
        }
    }
}

#[derive(clap::Args, Debug)]
struct ParseArgs {
    #[command(flatten)]
    input: InputArgs,
    /// CloudWatch Logs: only events at or after this time (RFC 3339, date, relative).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// CloudWatch Logs: only events at or before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Filters")]
struct FilterArgs {
    /// Only these users (repeatable; `*` globs).
    #[arg(long, value_name = "USER")]
    user: Vec<String>,
    /// Only these databases (repeatable; `*` globs).
    #[arg(long, value_name = "DB")]
    database: Vec<String>,
    /// Only these clients: an IP, a CIDR (10.0.0.0/8) or `local` (repeatable).
    #[arg(long, value_name = "IP|CIDR")]
    client: Vec<String>,
    /// Only these outcomes: success, failure, abandoned (repeatable).
    #[arg(long)]
    outcome: Vec<String>,
    /// Only these failure classes (repeatable; see README).
    #[arg(long, value_name = "CLASS")]
    failure_class: Vec<String>,
    /// Only these application names (repeatable; `*` globs).
    #[arg(long, value_name = "NAME")]
    app: Vec<String>,
    /// Sessions active at or after: RFC 3339, a date, or relative (90m, 2d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Sessions active at or before: RFC 3339, a date, or relative.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// IAM correlation inputs (README: "Who was it?").
#[derive(clap::Args, Debug, Default)]
struct IamArgs {
    /// CloudTrail: S3 delivery files or directories, one event per line, or
    /// `aws cloudtrail lookup-events` output (repeatable; gzip by content).
    #[arg(long, value_name = "PATH", help_heading = "IAM correlation")]
    cloudtrail: Vec<PathBuf>,
    /// A CloudWatch Logs group CloudTrail delivers to (repeatable; read with
    /// the CloudWatch options: --profile, --region, --endpoint-url,
    /// --rate-limit).
    #[arg(long, value_name = "NAME", help_heading = "IAM correlation")]
    cloudtrail_log_group: Vec<String>,
    /// `aws iam get-account-authorization-details` output (repeatable: one
    /// per account).
    #[arg(long, value_name = "PATH", help_heading = "IAM correlation")]
    iam_authorization: Vec<PathBuf>,
    /// `aws ec2 describe-instances` / `describe-network-interfaces` output
    /// (repeatable).
    #[arg(long, value_name = "PATH", help_heading = "IAM correlation")]
    ec2_inventory: Vec<PathBuf>,
    /// The DbiResourceId / DbClusterResourceId the logs belong to
    /// (`rds-db:connect` ARNs name it).
    #[arg(long, value_name = "ID", help_heading = "IAM correlation")]
    db_resource_id: Option<String>,
    /// TOML file mapping servers / log groups to account, region, resource id.
    #[arg(long, value_name = "FILE", help_heading = "IAM correlation")]
    aws_config: Option<PathBuf>,
    /// Correlate every session, not only PAM (IAM) logins.
    #[arg(long, help_heading = "IAM correlation")]
    correlate_all: bool,
    /// List every candidate with its evidence and sources.
    #[arg(long, help_heading = "IAM correlation")]
    explain: bool,
}

impl IamArgs {
    fn wanted(&self) -> bool {
        !self.cloudtrail.is_empty()
            || !self.cloudtrail_log_group.is_empty()
            || !self.iam_authorization.is_empty()
            || !self.ec2_inventory.is_empty()
            || self.db_resource_id.is_some()
            || self.aws_config.is_some()
            || self.correlate_all
            || self.explain
    }
}

/// Reads the CloudTrail events delivered to CloudWatch Logs `groups` (one
/// event per log event, whole groups) into `trail`; provenance is
/// `<group>:<stream>#<event id>`. Events that are not CloudTrail JSON are
/// counted in the trail's errors.
fn read_cloudtrail_groups(
    groups: &[String],
    cloud: &CloudArgs,
    trail: &mut iam::cloudtrail::CloudTrailIndex,
) -> Result<(), iam::InputError> {
    if groups.is_empty() {
        return Ok(());
    }
    let unreadable = |group: &str, e: &dyn std::fmt::Display| {
        iam::InputError::unreadable(std::path::Path::new(group), e.to_string())
    };
    // The connection options only: the groups are read whole.
    let fetcher = Fetcher::new(FetchOptions {
        groups: Vec::new(),
        group_prefixes: Vec::new(),
        streams: Vec::new(),
        stream_prefix: None,
        ..cloud.fetch_options()
    })
    .map_err(|e| unreadable(&groups[0], &e))?;
    for group in groups {
        let streams = fetcher
            .group_events(group, None, None)
            .map_err(|e| unreadable(group, &e))?;
        for mut fetched in streams {
            if let Some(e) = &fetched.error {
                return Err(unreadable(group, e));
            }
            crate::cloudwatch::events::order_and_dedupe(&mut fetched.events);
            for event in &fetched.events {
                let provenance = format!(
                    "{group}:{}#{}",
                    event.stream,
                    event.event_id.as_deref().unwrap_or("-")
                );
                if let Err(e) = trail.add_event_json(&provenance, &event.message) {
                    trail.stats.errors.push(e);
                }
            }
        }
    }
    Ok(())
}

/// Reads the AWS inputs before the logs. `Ok(None)` when no IAM option was
/// given (nothing changes in the output); errors are printed, and the exit
/// code so far is returned beside what could be read.
fn build_correlator(args: &IamArgs, cloud: &CloudArgs, quiet: bool) -> (Option<Correlator>, i32) {
    if !args.wanted() {
        return (None, exit::OK);
    }
    let mut code = exit::OK;
    let mut report = |e: iam::InputError| {
        note!("pgtrail: error: {e}");
        code = code.max(match e {
            iam::InputError::Unreadable { .. } => exit::INPUT_ERROR,
            iam::InputError::Unrecognised { .. } => exit::UNRECOGNISED,
        });
    };
    let config = match &args.aws_config {
        Some(path) => match iam::config::AwsConfig::read(path, args.db_resource_id.clone()) {
            Ok(c) => c,
            Err(e) => {
                report(e);
                iam::config::AwsConfig::new(args.db_resource_id.clone())
            }
        },
        None => iam::config::AwsConfig::new(args.db_resource_id.clone()),
    };
    let mut index = IamIndex {
        config,
        ..IamIndex::default()
    };
    for path in &args.cloudtrail {
        if let Err(e) = index.trail.read_path(path) {
            report(e);
        }
    }
    if let Err(e) = read_cloudtrail_groups(&args.cloudtrail_log_group, cloud, &mut index.trail) {
        report(e);
    }
    if !args.iam_authorization.is_empty() {
        let mut auth = iam::policy::AuthorizationDetails::new();
        for path in &args.iam_authorization {
            if let Err(e) = auth.read_path(path) {
                report(e);
            }
        }
        index.auth = Some(auth);
    }
    if !args.ec2_inventory.is_empty() {
        let mut inventory = iam::inventory::Inventory::new();
        for path in &args.ec2_inventory {
            if let Err(e) = inventory.read_path(path) {
                report(e);
            }
        }
        index.inventory = Some(inventory);
    }
    let stats = &index.trail.stats;
    for e in stats.errors.iter().take(20) {
        note!("pgtrail: warning: cloudtrail: {e}");
    }
    if stats.errors.len() > 20 {
        note!(
            "pgtrail: warning: cloudtrail: … and {} more",
            stats.errors.len() - 20
        );
    }
    let skipped = index
        .auth
        .iter()
        .flat_map(|a| a.skipped.iter())
        .chain(index.inventory.iter().flat_map(|i| i.skipped.iter()));
    for note in skipped {
        if !quiet {
            note!("pgtrail: skipped {note}");
        }
    }
    if !quiet {
        if !args.cloudtrail.is_empty() {
            note!(
                "pgtrail: cloudtrail: {} files, {} events ({} duplicates dropped, {} skipped, {} unreadable), {} IAM sessions",
                stats.files,
                stats.events,
                stats.duplicates,
                stats.skipped,
                stats.bad_records,
                index.trail.sessions.len()
            );
        }
        if let Some(auth) = &index.auth {
            note!(
                "pgtrail: iam authorization: {} files, {} principals",
                auth.files,
                auth.principals.len()
            );
        }
        if let Some(inv) = &index.inventory {
            note!(
                "pgtrail: ec2 inventory: {} files, {} addresses, {} instances",
                inv.files,
                inv.by_ip.len(),
                inv.instance_ips.len()
            );
        }
    }
    let options = CorrelateOptions {
        all: args.correlate_all,
        explain: args.explain,
    };
    (Some(Correlator::new(index, options)), code)
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum AuditFormat {
    Jsonl,
    Csv,
    Table,
    /// OCSF 1.8.0 Authentication (class 3002) events, JSON Lines.
    Ocsf,
    /// Elastic Common Schema authentication events, NDJSON.
    Ecs,
    /// ArcSight Common Event Format lines.
    Cef,
}

#[derive(clap::Args, Debug)]
struct AuditArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    iam: IamArgs,
    /// Output format; a table when stdout is a terminal, JSON Lines
    /// otherwise. ocsf, ecs and cef write one logon event per attempt and
    /// one logoff per ended session, for a SIEM.
    #[arg(long, value_enum, help_heading = "Output")]
    format: Option<AuditFormat>,
    /// Colour in tables.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Output")]
    color: ColorArg,
    /// With --follow on a file: stop after the file has been quiet this
    /// many milliseconds, writing the sessions still open (tests, scripts).
    #[arg(long, value_name = "MS", hide = true)]
    follow_exit_idle_ms: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SummaryFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SeverityArg {
    Low,
    Medium,
    High,
}

#[derive(clap::Args, Debug)]
struct SummaryArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    iam: IamArgs,
    /// Output format; a table when stdout is a terminal, JSON otherwise.
    #[arg(long, value_enum, help_heading = "Output")]
    format: Option<SummaryFormat>,
    /// Colour in tables.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Output")]
    color: ColorArg,
    /// Exit with code 5 when there are findings of at least this severity
    /// (low when given without a value), for batch jobs.
    #[arg(long, value_enum, num_args = 0..=1, help_heading = "Output",
        require_equals = true, default_missing_value = "low", value_name = "SEVERITY")]
    fail_on_findings: Option<SeverityArg>,
    /// brute_force_user: credential failures for one user … (0 disables)
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        help_heading = "Findings"
    )]
    brute_force_user_failures: usize,
    /// … within this window.
    #[arg(
        long,
        default_value = "5m",
        value_name = "DURATION",
        help_heading = "Findings"
    )]
    brute_force_user_window: String,
    /// brute_force_client: credential failures from one client … (0 disables)
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        help_heading = "Findings"
    )]
    brute_force_client_failures: usize,
    /// … within this window.
    #[arg(
        long,
        default_value = "5m",
        value_name = "DURATION",
        help_heading = "Findings"
    )]
    brute_force_client_window: String,
    /// password_spraying: distinct users one client fails against … (0 disables)
    #[arg(long, default_value_t = 5, value_name = "N", help_heading = "Findings")]
    spraying_users: usize,
    /// … within this window.
    #[arg(
        long,
        default_value = "10m",
        value_name = "DURATION",
        help_heading = "Findings"
    )]
    spraying_window: String,
    /// repeated_iam_failures: PAM (RDS IAM) failures for one user … (0 disables)
    #[arg(long, default_value_t = 3, value_name = "N", help_heading = "Findings")]
    iam_failures: usize,
    /// … within this window.
    #[arg(
        long,
        default_value = "15m",
        value_name = "DURATION",
        help_heading = "Findings"
    )]
    iam_window: String,
    /// new_client_for_user: flag only while the user had at most this many known clients (0 disables).
    #[arg(long, default_value_t = 3, value_name = "N", help_heading = "Findings")]
    new_client_max_known: usize,
    /// new_client_for_user: learning period after a user's first login.
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        help_heading = "Findings"
    )]
    new_client_baseline: String,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Parse(args) => run_parse(args),
        Command::Audit(args) => run_audit(args),
        Command::Summary(args) => run_summary(args),
        Command::Presets => {
            for p in prefix::presets() {
                println!(
                    "{:<14} {:<44} {}",
                    p.name,
                    format!("'{}'", p.prefix),
                    p.description
                );
            }
            exit::OK
        }
    }
}

fn usage_error(message: &str) -> i32 {
    note!("pgtrail: error: {message}");
    exit::USAGE
}

/// Options shared by every command that reads logs.
fn parse_options(args: &InputArgs) -> Result<ParseOptions, String> {
    let prefix = match (&args.prefix, &args.preset) {
        (Some(text), _) => Some(Prefix::compile(text).map_err(|e| e.to_string())?),
        (None, Some(name)) => {
            let Some(p) = prefix::preset(name) else {
                let names: Vec<&str> = prefix::presets().iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "unknown preset '{name}'; known: {}",
                    names.join(", ")
                ));
            };
            Some(Prefix::compile(&p.prefix).map_err(|e| e.to_string())?)
        }
        (None, None) => None,
    };
    Ok(ParseOptions {
        format: match args.log_format {
            LogFormatArg::Auto => FormatChoice::Auto,
            LogFormatArg::Stderr => FormatChoice::Stderr,
            LogFormatArg::Csvlog => FormatChoice::Csvlog,
            LogFormatArg::Jsonlog => FormatChoice::Jsonlog,
            LogFormatArg::Syslog => FormatChoice::Syslog,
        },
        prefix,
        max_line_bytes: args.max_line_bytes,
        messages: MessageText::Every,
    })
}

/// Reads every input (files, then the live CloudWatch source), calling
/// `emit` with every event in order. With `by_time`, the inputs of each
/// server are read in the order of their first event (hourly files given in
/// any order). Returns the exit code so far (input errors, unrecognised
/// inputs).
fn read_inputs(
    args: &InputArgs,
    window: (Option<i64>, Option<i64>),
    options: &ParseOptions,
    by_time: bool,
    shared: &RefCell<RunShared>,
    emit: &mut EventSink<'_>,
) -> Result<i32, io::Error> {
    let live = match live_options(&args.cloud, window) {
        Ok(live) => live,
        Err(e) => return Ok(usage_error(&e)),
    };
    // (input, found by walking a directory): files met in a directory that
    // are not PostgreSQL logs are skipped with a note, named files are not.
    let mut inputs: Vec<(InputSpec, bool)> = Vec::new();
    let mut code = exit::OK;
    if args.inputs.is_empty() && !live.is_live() {
        if io::stdin().is_terminal() {
            note!(
                "pgtrail: error: no input: give log files or directories, --log-group, or pipe a log into stdin (see --help)"
            );
            return Ok(exit::USAGE);
        }
        inputs.push((InputSpec::Stdin, false));
    }
    for arg in &args.inputs {
        match source::expand(std::slice::from_ref(arg)) {
            Ok(found) => {
                if found.is_empty() {
                    note!("pgtrail: error: {}: no files found", arg.display());
                    code = exit::INPUT_ERROR;
                }
                let walked = arg.is_dir();
                inputs.extend(found.into_iter().map(|spec| (spec, walked)));
            }
            Err(e) => {
                note!("pgtrail: error: {e}");
                code = exit::INPUT_ERROR;
            }
        }
    }

    let catalog = Catalog::builtin();
    let server_override: Option<Name> = args.server.as_deref().map(Name::new);
    let engine = Engine::new(EngineOptions {
        threads: threads(args),
        chunk_bytes: args.chunk_bytes,
        ..EngineOptions::default()
    })?;
    if by_time && inputs.len() > 1 {
        let servers: Vec<String> = inputs
            .iter()
            .map(|(spec, _)| match (&server_override, spec) {
                (Some(s), _) => s.to_string(),
                (None, InputSpec::Path(p)) => source::server_label(p),
                (None, InputSpec::Stdin) => "stdin".to_owned(),
                (None, InputSpec::Memory { server, .. }) => server.to_string(),
            })
            .collect();
        // Only the files of a server that has several need their first event.
        let mut per_server: HashMap<&str, usize> = HashMap::new();
        for server in &servers {
            *per_server.entry(server).or_default() += 1;
        }
        let several: Vec<bool> = servers.iter().map(|s| per_server[s.as_str()] > 1).collect();
        let heads = input_heads(&engine, &inputs, &several, options, catalog);
        for twins in same_log_twice(&servers, &heads) {
            let names: Vec<String> = twins.iter().map(|&i| inputs[i].0.label()).collect();
            let Some((last, rest)) = names.split_last() else {
                continue;
            };
            note!(
                "pgtrail: warning: server {}: {} and {} begin with the same {} connections: one log written {} times (several log_destination values, or a copy), so every session in them is reported {} times. Read one of them; csvlog and jsonlog carry milliseconds, and no user name can forge a record in them.",
                servers[twins[0]],
                rest.join(", "),
                last,
                heads[twins[0]].openings.len(),
                twins.len(),
                twins.len()
            );
        }
        let mut keyed: Vec<(String, i64, usize, (InputSpec, bool))> = servers
            .into_iter()
            .zip(heads)
            .zip(inputs)
            .enumerate()
            .map(|(index, ((server, head), input))| {
                (server, head.first_time.unwrap_or(i64::MIN), index, input)
            })
            .collect();
        keyed.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        inputs = keyed.into_iter().map(|k| k.3).collect();
    }

    let mut reader = Reader::new(engine, args.quiet, server_override, shared);
    reader.code = code;
    reader.region = args.cloud.region.clone();
    reader.run_specs(&inputs, options, emit)?;
    if live.is_live() {
        reader.run_live(&live, options, emit)?;
    }
    reader.finish(emit)
}

/// The head of each input marked `wanted` ([`Engine::input_head`]), read
/// on the engine's threads: with many small files this head of each file is
/// a good part of the run.
fn input_heads(
    engine: &Engine,
    inputs: &[(InputSpec, bool)],
    wanted: &[bool],
    options: &ParseOptions,
    catalog: &Catalog,
) -> Vec<InputHead> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let heads: Vec<std::sync::OnceLock<InputHead>> =
        inputs.iter().map(|_| std::sync::OnceLock::new()).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((spec, _)) = inputs.get(i) else {
                return;
            };
            if wanted.get(i) == Some(&true) {
                let _ = heads[i].set(engine.input_head(spec, options, catalog));
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..engine.options().threads.min(inputs.len()) {
            scope.spawn(work);
        }
        work();
    });
    heads
        .into_iter()
        .map(|head| head.into_inner().unwrap_or_default())
        .collect()
}

/// Fewest first connections two inputs must share to be called one log
/// written twice: a handful of pids in the same order at the same times
/// does not happen by chance, one or two might (a quiet server).
const SAME_LOG_MIN_OPENINGS: usize = 4;

/// Groups of inputs (indexes, in input order) of one server that open the
/// same first connections ([`InputHead::openings`], at least
/// [`SAME_LOG_MIN_OPENINGS`]): the same pids in the same order, each within
/// a second of the first input's. Each destination takes its own time
/// stamp: in the bundled PostgreSQL 15 RDS sample one connection is at
/// 16:22:44 in the stderr log and 16:22:45.003 in the csvlog.
fn same_log_twice(servers: &[String], heads: &[InputHead]) -> Vec<Vec<usize>> {
    let mut by_pids: HashMap<(&str, Vec<u32>), Vec<usize>> = HashMap::new();
    for (i, (server, head)) in servers.iter().zip(heads).enumerate() {
        if head.openings.len() >= SAME_LOG_MIN_OPENINGS {
            let pids = head.openings.iter().map(|&(pid, _)| pid).collect();
            by_pids.entry((server, pids)).or_default().push(i);
        }
    }
    let close_in_time = |a: &InputHead, b: &InputHead| {
        a.openings
            .iter()
            .zip(&b.openings)
            .all(|(&(_, x), &(_, y))| (x - y).abs() <= 1)
    };
    let mut twins: Vec<Vec<usize>> = by_pids
        .into_values()
        .filter_map(|group| {
            let first = &heads[group[0]];
            let same: Vec<usize> = group
                .into_iter()
                .filter(|&i| close_in_time(first, &heads[i]))
                .collect();
            (same.len() > 1).then_some(same)
        })
        .collect();
    twins.sort();
    twins
}

/// The live source's options from the command line.
fn live_options(
    cloud: &CloudArgs,
    (start_ms, end_ms): (Option<i64>, Option<i64>),
) -> Result<LiveOptions, String> {
    let duration_ms = |flag: &str, text: &str| -> Result<i64, String> {
        filter::parse_duration(text)
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("--{flag}: {e}"))
    };
    let live = LiveOptions {
        fetch: cloud.fetch_options(),
        start_ms,
        end_ms,
        follow: cloud.follow,
        poll_interval: std::time::Duration::from_millis(
            duration_ms("poll-interval", &cloud.poll_interval)?.max(1) as u64,
        ),
        overlap_ms: duration_ms("overlap", &cloud.overlap)?,
        checkpoint: cloud.checkpoint.clone(),
        max_polls: cloud.max_polls,
    };
    let live_only = cloud.follow
        || cloud.checkpoint.is_some()
        || !cloud.log_stream.is_empty()
        || cloud.log_stream_prefix.is_some();
    if live_only && !live.is_live() {
        return Err(
            "--follow, --checkpoint, --log-stream and --log-stream-prefix need --log-group or --log-group-prefix".into(),
        );
    }
    if !(cloud.rate_limit > 0.0 && cloud.rate_limit.is_finite()) {
        return Err("--rate-limit must be a positive number of requests per second".into());
    }
    Ok(live)
}

/// `--since`/`--until` as epoch ms (for the CloudWatch request window).
fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), String> {
    let now = chrono::Utc::now().timestamp_millis();
    let parse = |flag: &str, t: Option<&str>| -> Result<Option<i64>, String> {
        t.map(|t| filter::parse_time_bound(t, now).map_err(|e| format!("--{flag}: {e}")))
            .transpose()
    };
    Ok((parse("since", since)?, parse("until", until)?))
}

/// Where the output goes: stdout, or `--output FILE`.
enum Output {
    /// Not locked: the output thread owns it (`sink::background`).
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<std::fs::File>),
}

impl Output {
    /// Opens the output. With `--checkpoint`, an existing output file is cut
    /// back to the length the checkpoint recorded (the batch written after
    /// it was not committed and will be read again) and appended to.
    fn open(cloud: &CloudArgs) -> Result<Output, String> {
        let Some(path) = &cloud.output else {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                1 << 16,
                io::stdout(),
            )));
        };
        let committed = match &cloud.checkpoint {
            Some(cp) => Checkpoint::load(cp)?.output_len.unwrap_or(0),
            None => 0,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if len < committed {
            return Err(format!(
                "{}: shorter ({len} bytes) than the checkpoint says was written ({committed}); was it changed?",
                path.display()
            ));
        }
        file.set_len(committed)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file = file;
        io::Seek::seek(&mut file, io::SeekFrom::Start(committed))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Output::File(BufWriter::with_capacity(1 << 16, file)))
    }

    /// Flushes; for a file, syncs it and returns its length.
    fn commit(&mut self) -> io::Result<Option<u64>> {
        self.flush()?;
        self.synced()
    }

    /// After a flush: syncs an output file and returns its length.
    fn synced(&self) -> io::Result<Option<u64>> {
        match self {
            Output::Stdout(_) => Ok(None),
            Output::File(out) => {
                let file = out.get_ref();
                file.sync_data()?;
                Ok(Some(file.metadata()?.len()))
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File(out) => out.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(buf),
            Output::File(out) => out.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File(out) => out.flush(),
        }
    }
}

fn run_parse(args: ParseArgs) -> i32 {
    let options = match parse_options(&args.input) {
        Ok(o) => o,
        Err(e) => return usage_error(&e),
    };
    let window = match time_window(args.since.as_deref(), args.until.as_deref()) {
        Ok(w) => w,
        Err(e) => return usage_error(&e),
    };
    let out = match Output::open(&args.input.cloud) {
        Ok(out) => out,
        Err(e) => return usage_error(&e),
    };
    // Serialised and written on the output thread, in order.
    #[allow(clippy::borrowed_box)]
    let mut writer = match output_writer(
        &args.input,
        out,
        |buf: &mut Vec<u8>, event: &Box<crate::event::Event>| {
            jsonl::append_event(buf, event);
            Ok(())
        },
    ) {
        Ok(writer) => writer,
        Err(e) => return output_error(e),
    };
    let shared = RefCell::new(RunShared::default());
    let result = read_inputs(
        &args.input,
        window,
        &options,
        false,
        &shared,
        &mut |feed| match feed {
            Feed::Commit => writer.commit(),
            Feed::Events(events) => {
                events.into_iter().try_for_each(|e| writer.push(e))?;
                Ok(None)
            }
        },
    );
    finish_output(result, writer.finish())
}

/// The number of threads a run uses (`--threads`, else one per CPU).
fn threads(args: &InputArgs) -> usize {
    args.threads
        .map_or_else(|| EngineOptions::default().threads, |n| n as usize)
}

/// The writer of a streamed output: on a thread of its own, or on the
/// calling thread when the run has one thread.
fn output_writer<T, F>(
    args: &InputArgs,
    out: Output,
    serialise: F,
) -> io::Result<BackgroundWriter<T>>
where
    F: FnMut(&mut Vec<u8>, &T) -> io::Result<()> + 'static,
{
    if threads(args) == 1 {
        Ok(BackgroundWriter::inline(out, serialise, Output::commit))
    } else {
        BackgroundWriter::with_commit(out, serialise, Output::commit)
    }
}

fn finish_output(result: Result<i32, io::Error>, flushed: io::Result<()>) -> i32 {
    match result.and_then(|code| flushed.map(|()| code)) {
        Ok(code) => code,
        Err(e) => output_error(e),
    }
}

/// Reads all inputs, stitches sessions as the events stream by, and hands
/// each session that passes the filter to `each` as soon as it ends (the
/// ones still open at the end of the input last). Filtering happens after
/// stitching: a filter never changes what a session is. `each(None)` asks
/// the output to commit (flush) a batch of the live source. A PAM failure
/// gets the reason of its `iam-db-auth-error` line, when one was read.
///
/// With a `correlator`, each session that passes is correlated with IAM
/// (the AWS inputs were read before the logs) before `each` sees it.
fn for_each_session(
    input: &InputArgs,
    filter_args: &FilterArgs,
    correlator: Option<&Correlator>,
    each: &mut dyn FnMut(Option<Box<Session>>) -> io::Result<Option<u64>>,
) -> Result<i32, i32> {
    let options = ParseOptions {
        messages: MessageText::Explanations,
        ..parse_options(input).map_err(|e| usage_error(&e))?
    };
    let filter = build_filter(filter_args).map_err(|e| usage_error(&e))?;
    let window = time_window(filter_args.since.as_deref(), filter_args.until.as_deref())
        .map_err(|e| usage_error(&e))?;
    let shared = RefCell::new(RunShared::default());
    let mut stitcher = Stitcher::new();
    // A session on its way out (`None`: a commit of the live source).
    let mut pass = |session: Option<Box<Session>>| -> io::Result<Option<u64>> {
        let Some(mut session) = session else {
            return each(None);
        };
        shared.borrow_mut().complete(&mut session);
        if filter.matches(&session) {
            if let Some(c) = correlator {
                c.correlate(&mut session);
            }
            each(Some(session))?;
        }
        Ok(None)
    };
    let code = read_inputs(input, window, &options, true, &shared, &mut |feed| {
        let events = match feed {
            Feed::Commit => {
                // A poll of the live source is in: attempts past the
                // abandon delay (log time) leave now, not at the next
                // periodic sweep, then the output commits.
                stitcher.close_stale(0);
                for session in stitcher.drain_done() {
                    pass(Some(session))?;
                }
                return pass(None);
            }
            Feed::Events(events) => events,
        };
        for event in prefetching(events, |event| prefetch(&**event)) {
            stitcher.push_owned(event);
        }
        for session in stitcher.drain_done() {
            pass(Some(session))?;
        }
        Ok(None)
    })
    .map_err(output_error)?;
    if code == exit::USAGE {
        return Err(code);
    }
    for session in stitcher.finish() {
        pass(Some(Box::new(session))).map_err(output_error)?;
    }
    Ok(code)
}

fn build_filter(args: &FilterArgs) -> Result<Filter, String> {
    let spec = FilterSpec {
        users: args.user.clone(),
        databases: args.database.clone(),
        apps: args.app.clone(),
        clients: args.client.clone(),
        outcomes: args.outcome.clone(),
        failure_classes: args.failure_class.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
    };
    Filter::from_spec(&spec, chrono::Utc::now().timestamp_millis())
}

fn colour(choice: ColorArg) -> bool {
    match choice {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => table::use_colour(
            io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        ),
    }
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
}

fn run_audit(args: AuditArgs) -> i32 {
    // `--follow` without a log group follows a growing file.
    if args.input.cloud.follow && !args.input.cloud.is_live() {
        return run_follow(&args);
    }
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        AuditFormat::Table
    } else {
        AuditFormat::Jsonl
    });
    if args.input.cloud.follow && format == AuditFormat::Table {
        return usage_error(
            "--follow writes sessions as they end: use --format jsonl, csv, ocsf, ecs or cef",
        );
    }
    let out = match Output::open(&args.input.cloud) {
        Ok(out) => out,
        Err(e) => return usage_error(&e),
    };
    let (correlator, aws_code) = build_correlator(&args.iam, &args.input.cloud, args.input.quiet);
    let correlator = correlator.as_ref();
    let code = match format {
        // Streamed as sessions end: serialised here, written on the
        // output thread.
        AuditFormat::Jsonl | AuditFormat::Ocsf | AuditFormat::Ecs | AuditFormat::Cef => {
            let serialise: fn(&mut Vec<u8>, &Session) -> io::Result<()> = match format {
                AuditFormat::Ocsf => ocsf::write_session,
                AuditFormat::Ecs => ecs::write_session,
                AuditFormat::Cef => cef::write_session,
                _ => session_sink::append_jsonl,
            };
            #[allow(clippy::borrowed_box)]
            let write = move |buf: &mut Vec<u8>, s: &Box<Session>| serialise(buf, s);
            match output_writer(&args.input, out, write) {
                Ok(mut writer) => {
                    let code =
                        for_each_session(&args.input, &args.filter, correlator, &mut |s| match s {
                            Some(s) => writer.push(s).map(|()| None),
                            None => writer.commit(),
                        });
                    finish_sessions(code, writer.finish())
                }
                Err(e) => output_error(e),
            }
        }
        AuditFormat::Csv => {
            let mut csv = if correlator.is_some() {
                session_sink::CsvWriter::with_iam(out)
            } else {
                session_sink::CsvWriter::new(out)
            };
            let code = for_each_session(&args.input, &args.filter, correlator, &mut |s| match s {
                Some(s) => csv.write(&s).map(|()| None),
                None => csv.flush()?.synced(),
            });
            finish_sessions(code, csv.finish().and_then(|mut out| out.flush()))
        }
        // For reading: every session, ordered by start (the writer sorts,
        // in a scratch file past a bound).
        AuditFormat::Table => {
            let mut t = table::TableWriter::new(out, colour(args.color), terminal_width());
            let code = for_each_session(&args.input, &args.filter, correlator, &mut |s| {
                if let Some(s) = s {
                    t.write(&s)?;
                }
                Ok(None)
            });
            finish_sessions(code, t.finish().and_then(|mut out| out.flush()))
        }
    };
    combine_codes(code, aws_code)
}

/// The run's exit code with the AWS inputs' code: the worse of both, but a
/// usage or output error stays as it is.
fn combine_codes(code: i32, aws_code: i32) -> i32 {
    match code {
        exit::OK | exit::INPUT_ERROR | exit::UNRECOGNISED => code.max(aws_code),
        other => other,
    }
}

/// `audit --follow FILE`: sessions written and flushed one by one as they end.
fn run_follow(args: &AuditArgs) -> i32 {
    type WriteEvents =
        fn(&mut BufWriter<io::StdoutLock<'static>>, &Session, Part) -> io::Result<()>;
    // Session records are written once, when the session ends; SIEM
    // events split into the logon (announced when established) and the rest.
    let write: WriteEvents = match args.format {
        None | Some(AuditFormat::Jsonl) => |out, s, part| match part {
            Part::Logon => Ok(()),
            Part::All | Part::Rest => session_sink::write_jsonl(out, s),
        },
        Some(AuditFormat::Ocsf) => ocsf::write_events,
        Some(AuditFormat::Ecs) => ecs::write_events,
        Some(AuditFormat::Cef) => cef::write_events,
        Some(AuditFormat::Csv | AuditFormat::Table) => {
            return usage_error("--follow writes jsonl, ocsf, ecs or cef");
        }
    };
    let path = match args.input.inputs.as_slice() {
        [path] if path.is_file() => path,
        [path] if path.as_os_str() != "-" && !path.exists() => {
            note!("pgtrail: error: {}: no such file", path.display());
            return exit::INPUT_ERROR;
        }
        _ => return usage_error("--follow takes exactly one log file"),
    };
    let options = match parse_options(&args.input) {
        Ok(o) => ParseOptions {
            messages: MessageText::Explanations,
            ..o
        },
        Err(e) => return usage_error(&e),
    };
    let filter = match build_filter(&args.filter) {
        Ok(f) => f,
        Err(e) => return usage_error(&e),
    };
    let follow_options = follow::FollowOptions {
        exit_after_idle: args
            .follow_exit_idle_ms
            .map(std::time::Duration::from_millis),
        ..follow::FollowOptions::default()
    };
    let quiet = args.input.quiet;
    let (correlator, aws_code) = build_correlator(&args.iam, &args.input.cloud, quiet);
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let result = follow::follow(
        path,
        &options,
        Catalog::builtin(),
        args.input.server.as_deref().map(Name::new),
        &follow_options,
        &mut |detected| {
            if !quiet {
                note!(
                    "pgtrail: following {} ({detected}); attempts not authorized within {} min are written as abandoned",
                    path.display(),
                    follow::ABANDON_DELAY_MINUTES
                );
            }
        },
        &mut |update| {
            let (mut session, part) = match update {
                follow::Update::Established(s) => (s, Part::Logon),
                follow::Update::Ended(s) if s.logon_announced() => (s, Part::Rest),
                follow::Update::Ended(s) => (s, Part::All),
            };
            if filter.matches(&session) {
                if let Some(c) = &correlator {
                    c.correlate(&mut session);
                }
                write(&mut out, &session, part)?;
                out.flush()?;
            }
            Ok(())
        },
    );
    match result {
        Ok(()) => finish_output(Ok(combine_codes(exit::OK, aws_code)), out.flush()),
        Err(follow::FollowError::Output(e)) => output_error(e),
        Err(follow::FollowError::Input(e)) => {
            note!("pgtrail: error: {}: {e}", path.display());
            exit::INPUT_ERROR
        }
        Err(follow::FollowError::Format(e)) => {
            note!("pgtrail: error: {}: {e}", path.display());
            exit::UNRECOGNISED
        }
    }
}

fn finish_sessions(code: Result<i32, i32>, written: io::Result<()>) -> i32 {
    match code {
        Err(code) => code,
        Ok(code) => finish_output(Ok(code), written),
    }
}

fn thresholds(args: &SummaryArgs) -> Result<Thresholds, String> {
    let d =
        |flag: &str, text: &str| filter::parse_duration(text).map_err(|e| format!("--{flag}: {e}"));
    Ok(Thresholds {
        brute_force_user_failures: args.brute_force_user_failures,
        brute_force_user_window: d("brute-force-user-window", &args.brute_force_user_window)?,
        brute_force_client_failures: args.brute_force_client_failures,
        brute_force_client_window: d("brute-force-client-window", &args.brute_force_client_window)?,
        spraying_users: args.spraying_users,
        spraying_window: d("spraying-window", &args.spraying_window)?,
        iam_failures: args.iam_failures,
        iam_window: d("iam-window", &args.iam_window)?,
        new_client_max_known: args.new_client_max_known,
        new_client_baseline: d("new-client-baseline", &args.new_client_baseline)?,
    })
}

fn run_summary(args: SummaryArgs) -> i32 {
    if args.input.cloud.follow {
        return usage_error("summary reads to the end: --follow is for parse and audit");
    }
    let thresholds = match thresholds(&args) {
        Ok(t) => t,
        Err(e) => return usage_error(&e),
    };
    let (correlator, aws_code) = build_correlator(&args.iam, &args.input.cloud, args.input.quiet);
    // No session is held: each is counted and noted for the findings as it
    // arrives (see `summary::Tally`, `findings::Collector`).
    let mut tally = summary::Tally::default();
    let mut collector = findings::Collector::new(&thresholds);
    let mut code =
        match for_each_session(&args.input, &args.filter, correlator.as_ref(), &mut |s| {
            if let Some(s) = s {
                let view = summary::SessionView::of(&s);
                tally.add(&view);
                collector.add(&view);
            }
            Ok(None)
        }) {
            Ok(code) => combine_codes(code, aws_code),
            Err(code) => return code,
        };
    let summary = tally.finish();
    let findings = match collector.finish() {
        Ok(findings) => findings,
        Err(e) => {
            note!("pgtrail: error: summary findings: {e}");
            return exit::OUTPUT_ERROR;
        }
    };
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        SummaryFormat::Table
    } else {
        SummaryFormat::Json
    });
    let mut out = match Output::open(&args.input.cloud) {
        Ok(out) => out,
        Err(e) => return usage_error(&e),
    };
    let written = match format {
        SummaryFormat::Json => summary_sink::write_json(&mut out, &summary, &findings, &thresholds),
        SummaryFormat::Table => {
            summary_sink::write_table(&mut out, &summary, &findings, colour(args.color))
        }
    };
    if let Some(minimum) = args.fail_on_findings {
        let minimum = match minimum {
            SeverityArg::Low => findings::Severity::Low,
            SeverityArg::Medium => findings::Severity::Medium,
            SeverityArg::High => findings::Severity::High,
        };
        if code == exit::OK && findings.iter().any(|f| f.severity >= minimum) {
            code = exit::FINDINGS;
        }
    }
    finish_output(written.map(|()| code), out.flush())
}

fn output_error(e: io::Error) -> i32 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return exit::OK;
    }
    note!("pgtrail: error: writing output: {e}");
    exit::OUTPUT_ERROR
}

/// `stderr, prefix preset 'rds' (…): 120 records, 40 events (…), unrecognised: foreign 2`
pub fn stats_line(detected: &Detected, stats: &Stats) -> String {
    let kinds: Vec<String> = stats
        .events_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let mut line = format!(
        "{detected}: {} records, {} events",
        stats.records, stats.events
    );
    if !kinds.is_empty() {
        line.push_str(&format!(" ({})", kinds.join(", ")));
    }
    if stats.unparsed.is_empty() {
        line.push_str(", unrecognised: 0");
    } else {
        let parts: Vec<String> = stats
            .unparsed
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        line.push_str(&format!(", unrecognised: {}", parts.join(", ")));
    }
    if stats.invalid_utf8 > 0 {
        line.push_str(&format!(", invalid UTF-8 records: {}", stats.invalid_utf8));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(openings: &[(u32, i64)]) -> InputHead {
        InputHead {
            first_time: openings.first().map(|&(_, s)| s * 1000),
            openings: openings.to_vec(),
        }
    }

    #[test]
    fn the_same_log_is_the_same_pids_within_a_second() {
        let base = [(10, 100), (12, 100), (14, 101), (16, 102)];
        let shifted = [(10, 100), (12, 101), (14, 101), (16, 102)];
        let late = [(10, 100), (12, 102), (14, 101), (16, 102)];
        let other_pids = [(10, 100), (13, 100), (14, 101), (16, 102)];
        let servers: Vec<String> = ["a", "a", "a", "a", "b"].map(String::from).to_vec();
        let heads = [
            head(&base),
            head(&shifted),
            head(&late),
            head(&other_pids),
            head(&base),
        ];
        // 0 and 1 agree within a second; 2 is two seconds off on one
        // connection; 3 has other pids; 4 is another server.
        assert_eq!(same_log_twice(&servers, &heads), vec![vec![0, 1]]);
        // Too few connections to tell.
        let short = [head(&base[..3]), head(&base[..3])];
        assert!(same_log_twice(&servers[..2], &short).is_empty());
    }
}
