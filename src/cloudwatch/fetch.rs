//! Reading log groups live through `aws-sdk-cloudwatchlogs`.
//!
//! - The SDK configuration follows the AWS conventions: the default
//!   credential chain (environment, profiles including SSO and
//!   `credential_process`, web identity, ECS/IMDS), `--profile`,
//!   `--region`, `--endpoint-url` or `AWS_ENDPOINT_URL[_CLOUDWATCH_LOGS]`.
//!   Credentials are never printed.
//! - Retries are adaptive (client-side rate adaptation on throttling, up to
//!   8 attempts, backoff 200 ms … 20 s) with operation and attempt timeouts;
//!   every request also waits for the shared [`RateLimiter`].
//! - Discovery: `--log-group` names, or DescribeLogGroups under
//!   `--log-group-prefix` keeping the RDS/Aurora PostgreSQL groups
//!   (`…/postgresql`) and the `…/iam-db-auth-error` groups beside them;
//!   then DescribeLogStreams (with `--log-stream-prefix`, applied again
//!   client-side because moto ignores it), or the `--log-stream` names.
//! - One FilterLogEvents pagination per stream (`logStreamNames=[stream]`),
//!   streams fetched in parallel under the limiter. Pages are followed until
//!   no `nextToken` is returned (empty pages with a token are normal); a
//!   page that still fails after the SDK's retries is retried from the same
//!   token (never from the start), then the stream is reported as failed
//!   with what was fetched before.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatchlogs as cwl;
use cwl::error::DisplayErrorContext;

use super::events::CwEvent;
use super::limiter::RateLimiter;

/// Where and how to read.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub groups: Vec<String>,
    pub group_prefixes: Vec<String>,
    pub streams: Vec<String>,
    pub stream_prefix: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Requests per second, all requests together (≤ 0: unlimited).
    pub rate_limit: f64,
    /// Streams fetched at once.
    pub parallel: usize,
    /// Events per FilterLogEvents page (`limit`, at most 10,000).
    pub page_size: i32,
    /// Attempts of the SDK's retry per request (0: the default, 8).
    pub max_attempts: u32,
    /// Show a progress line on stderr (only if it is a terminal).
    pub progress: bool,
}

/// What a log group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKind {
    /// The `iam-db-auth-error` log (read before the PostgreSQL logs).
    IamAuthError,
    /// A PostgreSQL log (or any other group named explicitly).
    Postgres,
}

/// `…/iam-db-auth-error` or not.
pub fn group_kind(name: &str) -> GroupKind {
    if name.trim_end_matches('/').ends_with("/iam-db-auth-error") {
        GroupKind::IamAuthError
    } else {
        GroupKind::Postgres
    }
}

/// True for the groups `--log-group-prefix` keeps: RDS/Aurora PostgreSQL
/// logs and the IAM authentication error logs beside them.
pub fn is_wanted_group(name: &str) -> bool {
    let name = name.trim_end_matches('/');
    name.ends_with("/postgresql") || name.ends_with("/iam-db-auth-error")
}

/// One log stream to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub kind: GroupKind,
    pub group: String,
    pub stream: String,
}

/// A request that failed for good.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub message: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What one stream's fetch returned.
#[derive(Debug)]
pub struct StreamFetch {
    pub target: Target,
    /// Every event received, in fetch order (ordering happens later).
    pub events: Vec<CwEvent>,
    pub pages: u64,
    /// Events the service returned without a timestamp or message (counted,
    /// reported; never seen in practice).
    pub malformed: u64,
    /// Set when the stream could not be read to the end: `events` holds
    /// what came before.
    pub error: Option<FetchError>,
}

/// Counters for the progress line and the final stats.
#[derive(Debug, Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub events: AtomicU64,
    pub streams_done: AtomicU64,
    pub retries: AtomicU64,
}

/// A CloudWatch Logs client with its rate limiter and runtime.
pub struct Fetcher {
    runtime: tokio::runtime::Runtime,
    client: cwl::Client,
    limiter: Arc<RateLimiter>,
    options: FetchOptions,
    pub progress: Arc<Progress>,
}

/// A page that failed after the SDK's retries is tried again this many
/// times (from the same token) before the stream is given up.
const PAGE_RETRIES: u32 = 4;

impl Fetcher {
    /// Loads the AWS configuration (no request is made yet).
    pub fn new(options: FetchOptions) -> Result<Fetcher, FetchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FetchError {
                message: format!("cannot start the async runtime: {e}"),
            })?;
        let client = runtime.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .retry_config(
                    RetryConfig::adaptive()
                        .with_max_attempts(if options.max_attempts == 0 {
                            8
                        } else {
                            options.max_attempts
                        })
                        .with_initial_backoff(Duration::from_millis(200))
                        .with_max_backoff(Duration::from_secs(20)),
                )
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_timeout(Duration::from_secs(300))
                        .operation_attempt_timeout(Duration::from_secs(60))
                        .connect_timeout(Duration::from_secs(10))
                        .build(),
                );
            if let Some(profile) = &options.profile {
                loader = loader.profile_name(profile);
            }
            if let Some(region) = &options.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            if let Some(url) = &options.endpoint_url {
                loader = loader.endpoint_url(url);
            }
            let shared = loader.load().await;
            cwl::Client::new(&shared)
        });
        Ok(Fetcher {
            runtime,
            client,
            limiter: Arc::new(RateLimiter::new(options.rate_limit)),
            options,
            progress: Arc::new(Progress::default()),
        })
    }

    /// The streams to read, sorted: `iam-db-auth-error` groups first (so
    /// their reasons are known when the PAM failures are stitched).
    pub fn discover(&self) -> Result<Vec<Target>, FetchError> {
        self.runtime.block_on(self.discover_async())
    }

    async fn discover_async(&self) -> Result<Vec<Target>, FetchError> {
        let mut groups: Vec<String> = self.options.groups.clone();
        for prefix in &self.options.group_prefixes {
            let mut token: Option<String> = None;
            loop {
                self.limiter.acquire().await;
                self.progress.requests.fetch_add(1, Ordering::Relaxed);
                let page = self
                    .client
                    .describe_log_groups()
                    .log_group_name_prefix(prefix)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| FetchError {
                        message: format!(
                            "DescribeLogGroups (prefix {prefix}): {}",
                            DisplayErrorContext(&e)
                        ),
                    })?;
                groups.extend(
                    page.log_groups()
                        .iter()
                        .filter_map(|g| g.log_group_name())
                        .filter(|name| name.starts_with(prefix.as_str()) && is_wanted_group(name))
                        .map(str::to_owned),
                );
                token = page
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        groups.sort();
        groups.dedup();
        let mut targets = Vec::new();
        for group in groups {
            targets.extend(self.streams_of(&group).await?);
        }
        targets.sort();
        targets.dedup();
        Ok(targets)
    }

    /// The streams of one group (`--log-stream` names, or DescribeLogStreams
    /// with `--log-stream-prefix`, filtered here too).
    async fn streams_of(&self, group: &str) -> Result<Vec<Target>, FetchError> {
        let kind = group_kind(group);
        if !self.options.streams.is_empty() {
            return Ok(self
                .options
                .streams
                .iter()
                .map(|s| Target {
                    kind,
                    group: group.to_owned(),
                    stream: s.clone(),
                })
                .collect());
        }
        let mut targets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.limiter.acquire().await;
            self.progress.requests.fetch_add(1, Ordering::Relaxed);
            let page = self
                .client
                .describe_log_streams()
                .log_group_name(group)
                .set_log_stream_name_prefix(self.options.stream_prefix.clone())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| FetchError {
                    message: format!("DescribeLogStreams ({group}): {}", DisplayErrorContext(&e)),
                })?;
            let prefix = self.options.stream_prefix.as_deref().unwrap_or("");
            targets.extend(
                page.log_streams()
                    .iter()
                    .filter_map(|s| s.log_stream_name())
                    .filter(|s| s.starts_with(prefix))
                    .map(|s| Target {
                        kind,
                        group: group.to_owned(),
                        stream: s.to_owned(),
                    }),
            );
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                return Ok(targets);
            }
        }
    }

    /// The raw events of one log group, any content (e.g. CloudTrail JSON
    /// delivered to CloudWatch Logs), between `start` and `end` (epoch ms,
    /// inclusive): one [`StreamFetch`] per stream, events in fetch order
    /// (use `events::order_and_dedupe` to order and de-duplicate them).
    pub fn group_events(
        &self,
        group: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Vec<StreamFetch>, FetchError> {
        let targets = self.runtime.block_on(self.streams_of(group))?;
        let windows: Vec<(Target, Option<i64>, Option<i64>)> =
            targets.into_iter().map(|t| (t, start, end)).collect();
        Ok(self.fetch(&windows))
    }

    /// Fetches every target's events between its `(start, end)` (epoch ms,
    /// both inclusive), streams in parallel under the rate limit. Results
    /// come back in the order of `targets`.
    pub fn fetch(&self, targets: &[(Target, Option<i64>, Option<i64>)]) -> Vec<StreamFetch> {
        let mut out = Vec::with_capacity(targets.len());
        // Collecting cannot fail.
        let _ = self.fetch_each(targets, &mut |f| {
            out.push(f);
            Ok(())
        });
        out
    }

    /// Like [`Fetcher::fetch`], but hands each stream to `each` as soon as
    /// it and the streams before it are fetched, in the order of `targets`;
    /// at most `parallel` streams are fetched ahead of the one `each` waits
    /// for, so memory holds a few streams, not the whole run. Fetching pauses
    /// while `each` runs. An error of `each` stops the run.
    pub fn fetch_each(
        &self,
        targets: &[(Target, Option<i64>, Option<i64>)],
        each: &mut dyn FnMut(StreamFetch) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let ahead = self.options.parallel.max(1);
        let page_size = self.options.page_size.clamp(1, 10_000);
        self.runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let mut task_index: std::collections::HashMap<tokio::task::Id, usize> =
                std::collections::HashMap::new();
            let mut done: std::collections::BTreeMap<usize, StreamFetch> =
                std::collections::BTreeMap::new();
            let (mut next_spawn, mut next_emit) = (0usize, 0usize);
            let show = self.options.progress && std::io::stderr().is_terminal();
            let mut ticker = tokio::time::interval(Duration::from_millis(250));
            let failed = |index: usize, why: String| StreamFetch {
                target: targets[index].0.clone(),
                events: Vec::new(),
                pages: 0,
                malformed: 0,
                error: Some(FetchError { message: why }),
            };
            while next_emit < targets.len() {
                while next_spawn < targets.len() && next_spawn < next_emit + ahead {
                    let (target, start, end) = targets[next_spawn].clone();
                    let client = self.client.clone();
                    let limiter = self.limiter.clone();
                    let progress = self.progress.clone();
                    let handle = set.spawn(async move {
                        let fetched =
                            fetch_stream(&client, &limiter, &progress, target, start, end, page_size)
                                .await;
                        progress.streams_done.fetch_add(1, Ordering::Relaxed);
                        fetched
                    });
                    task_index.insert(handle.id(), next_spawn);
                    next_spawn += 1;
                }
                if let Some(fetched) = done.remove(&next_emit) {
                    next_emit += 1;
                    each(fetched)?;
                    continue;
                }
                tokio::select! {
                    joined = set.join_next_with_id() => match joined {
                        Some(Ok((id, fetched))) => {
                            if let Some(index) = task_index.remove(&id) {
                                done.insert(index, fetched);
                            }
                        }
                        Some(Err(e)) => {
                            // A panicking task is a bug; report its stream, go on.
                            if let Some(index) = task_index.remove(&e.id()) {
                                done.insert(index, failed(index, format!("fetch task failed: {e}")));
                            }
                        }
                        None => {
                            // Nothing running, yet a stream is missing: never
                            // expected; report instead of waiting forever.
                            done.insert(next_emit, failed(next_emit, "fetch task lost".into()));
                        }
                    },
                    _ = ticker.tick(), if show => self.print_progress(targets.len()),
                }
            }
            if show {
                self.print_progress(targets.len());
                note!();
            }
            Ok(())
        })
    }

    fn print_progress(&self, streams: usize) {
        let p = &self.progress;
        use std::io::Write as _;
        let _ = write!(
            std::io::stderr(),
            "\rpgtrail: CloudWatch: {}/{streams} streams, {} pages, {} events, {} requests ",
            p.streams_done.load(Ordering::Relaxed),
            p.pages.load(Ordering::Relaxed),
            p.events.load(Ordering::Relaxed),
            p.requests.load(Ordering::Relaxed),
        );
    }
}

/// Paginates FilterLogEvents over one stream.
async fn fetch_stream(
    client: &cwl::Client,
    limiter: &RateLimiter,
    progress: &Progress,
    target: Target,
    start: Option<i64>,
    end: Option<i64>,
    page_size: i32,
) -> StreamFetch {
    let mut out = StreamFetch {
        target,
        events: Vec::new(),
        pages: 0,
        malformed: 0,
        error: None,
    };
    let mut token: Option<String> = None;
    let mut failures = 0u32;
    loop {
        limiter.acquire().await;
        progress.requests.fetch_add(1, Ordering::Relaxed);
        let sent = client
            .filter_log_events()
            .log_group_name(&out.target.group)
            .log_stream_names(&out.target.stream)
            .set_start_time(start)
            .set_end_time(end)
            .limit(page_size)
            .set_next_token(token.clone())
            .send()
            .await;
        let page = match sent {
            Ok(page) => page,
            Err(e) => {
                let permanent = e.as_service_error().is_some_and(|s| {
                    s.is_resource_not_found_exception() || s.is_invalid_parameter_exception()
                });
                failures += 1;
                if permanent || failures > PAGE_RETRIES {
                    out.error = Some(FetchError {
                        message: format!(
                            "FilterLogEvents ({}, stream {}) after {} pages: {}",
                            out.target.group,
                            out.target.stream,
                            out.pages,
                            DisplayErrorContext(&e)
                        ),
                    });
                    return out;
                }
                progress.retries.fetch_add(1, Ordering::Relaxed);
                // Resume from the same token after a pause.
                tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
                continue;
            }
        };
        failures = 0;
        out.pages += 1;
        progress.pages.fetch_add(1, Ordering::Relaxed);
        progress
            .events
            .fetch_add(page.events().len() as u64, Ordering::Relaxed);
        for e in page.events() {
            let (Some(timestamp_ms), Some(message)) = (e.timestamp(), e.message()) else {
                out.malformed += 1;
                continue;
            };
            let seq = out.events.len() as u64;
            out.events.push(CwEvent {
                group: Some(out.target.group.clone()),
                stream: e.log_stream_name().unwrap_or(&out.target.stream).to_owned(),
                event_id: e.event_id().map(str::to_owned),
                timestamp_ms,
                ingestion_ms: e.ingestion_time(),
                message: message.to_owned(),
                seq,
            });
        }
        let next = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        match next {
            None => return out,
            // The service handing back the token it was given with nothing
            // new would loop forever.
            Some(t) if Some(&t) == token.as_ref() && page.events().is_empty() => return out,
            Some(t) => token = Some(t),
        }
    }
}
