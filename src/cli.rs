//! Command-line interface: clap arguments → validated options, the run loop
//! over inputs, the stats lines on stderr and the exit codes. No clap type
//! leaves this module.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::extract::Stats;
use crate::message::Catalog;
use crate::pipeline::{self, Detected, FormatChoice, ParseOptions};
use crate::prefix::{self, Prefix};
use crate::sink::jsonl;
use crate::source::{self, InputSpec};

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
}

#[derive(Parser, Debug)]
#[command(name = "pgtrail", version, about = "PostgreSQL connection logs → an audit trail", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every connection and authentication record as one JSON event per line.
    Parse(ParseArgs),
    /// List the log_line_prefix presets auto-detection tries.
    Presets,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Auto,
    Stderr,
    Csvlog,
    Jsonlog,
    Syslog,
}

#[derive(clap::Args, Debug)]
struct ParseArgs {
    /// Log files or directories (recursive); `-` or nothing reads stdin.
    /// gzip is detected by content.
    inputs: Vec<PathBuf>,
    /// Record format; auto-detected per input by default.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
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
    eprintln!("pgtrail: error: {message}");
    exit::USAGE
}

fn run_parse(args: ParseArgs) -> i32 {
    let prefix = match (&args.prefix, &args.preset) {
        (Some(text), _) => match Prefix::compile(text) {
            Ok(p) => Some(p),
            Err(e) => return usage_error(&e.to_string()),
        },
        (None, Some(name)) => match prefix::preset(name) {
            Some(p) => match Prefix::compile(&p.prefix) {
                Ok(p) => Some(p),
                Err(e) => return usage_error(&e.to_string()),
            },
            None => {
                let names: Vec<&str> = prefix::presets().iter().map(|p| p.name.as_str()).collect();
                return usage_error(&format!(
                    "unknown preset '{name}'; known: {}",
                    names.join(", ")
                ));
            }
        },
        (None, None) => None,
    };
    let options = ParseOptions {
        format: match args.format {
            FormatArg::Auto => FormatChoice::Auto,
            FormatArg::Stderr => FormatChoice::Stderr,
            FormatArg::Csvlog => FormatChoice::Csvlog,
            FormatArg::Jsonlog => FormatChoice::Jsonlog,
            FormatArg::Syslog => FormatChoice::Syslog,
        },
        prefix,
        max_line_bytes: args.max_line_bytes,
    };
    // (input, found by walking a directory): files met in a directory that
    // are not PostgreSQL logs are skipped with a note, named files are not.
    let mut inputs: Vec<(InputSpec, bool)> = Vec::new();
    let mut code = exit::OK;
    if args.inputs.is_empty() {
        if io::stdin().is_terminal() {
            return usage_error(
                "no input: give log files or directories, or pipe a log into stdin (see --help)",
            );
        }
        inputs.push((InputSpec::Stdin, false));
    }
    for arg in &args.inputs {
        match source::expand(std::slice::from_ref(arg)) {
            Ok(found) => {
                if found.is_empty() {
                    eprintln!("pgtrail: error: {}: no files found", arg.display());
                    code = exit::INPUT_ERROR;
                }
                let walked = arg.is_dir();
                inputs.extend(found.into_iter().map(|spec| (spec, walked)));
            }
            Err(e) => {
                eprintln!("pgtrail: error: {e}");
                code = exit::INPUT_ERROR;
            }
        }
    }

    let catalog = Catalog::builtin();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut total = Stats::default();
    let mut skipped: Vec<Arc<str>> = Vec::new();
    let mut parsed_inputs = 0usize;
    for (spec, walked) in &inputs {
        let loaded = source::load(spec);
        if let Some(err) = &loaded.error {
            eprintln!("pgtrail: error: {err}");
            code = code.max(exit::INPUT_ERROR);
        }
        if loaded.bytes.is_empty() {
            if loaded.error.is_none() && !args.quiet {
                eprintln!("pgtrail: {}: empty", loaded.label);
            }
            continue;
        }
        let detected = match pipeline::detect(&loaded.bytes, &options, catalog) {
            Ok(d) => d,
            Err(_) if *walked => {
                skipped.push(loaded.label.clone());
                continue;
            }
            Err(e) => {
                eprintln!("pgtrail: error: {}: {e}", loaded.label);
                code = code.max(exit::UNRECOGNISED);
                continue;
            }
        };
        parsed_inputs += 1;
        let server: Arc<str> = match &args.server {
            Some(s) => Arc::from(s.as_str()),
            None => loaded.server.clone(),
        };
        let parsed = pipeline::parse_bytes(
            &loaded.bytes,
            &detected,
            &options,
            catalog,
            server,
            loaded.label.clone(),
        );
        for event in &parsed.events {
            if let Err(e) = jsonl::write_event(&mut out, event) {
                return output_error(e);
            }
        }
        if !args.quiet {
            eprintln!(
                "pgtrail: {}: {}",
                loaded.label,
                stats_line(&detected, &parsed.stats)
            );
        }
        if parsed.stats.records == 0 {
            eprintln!(
                "pgtrail: error: {}: no record recognised ({}); check --format/--prefix",
                loaded.label, detected
            );
            code = code.max(exit::UNRECOGNISED);
        } else if parsed.stats.events == 0 && !args.quiet {
            eprintln!(
                "pgtrail: warning: {}: no connection events; is log_connections on?",
                loaded.label
            );
        }
        total.add(&parsed.stats);
    }
    if let Err(e) = out.flush() {
        return output_error(e);
    }
    if !skipped.is_empty() && !args.quiet {
        let shown: Vec<&str> = skipped.iter().take(4).map(|s| &**s).collect();
        let more = if skipped.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        eprintln!(
            "pgtrail: skipped {} files found in directories that are not PostgreSQL logs ({}{more})",
            skipped.len(),
            shown.join(", ")
        );
    }
    if parsed_inputs == 0 && !skipped.is_empty() {
        eprintln!(
            "pgtrail: error: none of the {} files found is a PostgreSQL log",
            skipped.len()
        );
        code = code.max(exit::UNRECOGNISED);
    }
    if parsed_inputs > 1 && !args.quiet {
        eprintln!(
            "pgtrail: total: {parsed_inputs} inputs, {} records, {} events, {} unrecognised lines{}",
            total.records,
            total.events,
            total.unparsed_total(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} files skipped", skipped.len())
            }
        );
    }
    code
}

fn output_error(e: io::Error) -> i32 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return exit::OK;
    }
    eprintln!("pgtrail: error: writing output: {e}");
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
