//! The worker's bootstrap configuration: the seed's `BootstrapConfig` (`namespace`, `log_level`) plus the
//! transport, ring sizes, timeouts and the event source. The step store is the default source; the synthetic
//! one runs only when asked for. Unknown keys are refused, and a likely typo is answered with the key meant.

use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

/// How step events reach the TS handlers.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Frames in the region's events ring, read by TS straight from shared memory (the default).
    #[default]
    Ring,
    /// The seed's per-poll contract: `poll_step_events()` returns one JSON C string per call (the baseline).
    Ffi,
}

/// Where step events come from.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// Tasker-shaped events made from the fixture, without a database (tests, benchmarks).
    Synthetic {
        /// Events to produce in all (absent: unlimited).
        #[serde(default)]
        count: Option<u64>,
        /// Events per second (absent or 0: as fast as the ring takes them).
        #[serde(default)]
        rate_per_sec: Option<u64>,
        /// Approximate JSON size of each event (absent: the 2.7 KB fixture as is).
        #[serde(default)]
        event_bytes: Option<usize>,
        /// When set, each event's size is drawn uniformly from `event_bytes` (or the fixture's size) up to
        /// this many bytes (tests of fragmentation and mixed sizes).
        #[serde(default)]
        event_bytes_max: Option<usize>,
        /// Adds a top-level `enqueued_at_us` to each event: epoch microseconds (system clock) of the moment
        /// the event became available (its due time under `rate_per_sec`, else the source's start), so a
        /// reader can measure enqueue-to-handler latency without coordinated omission (default false).
        #[serde(default)]
        stamp_enqueued_at: bool,
    },
    /// Ready steps of the step store (`tasker-store`): SQLite by default, PostgreSQL for many machines.
    Store {
        /// The store URL: `sqlite:path`, a bare file path, or `postgres://...` (absent: a non-empty
        /// `TASKER_DATABASE_URL`, else `tasker.db` in the working directory, created on first use).
        #[serde(default)]
        database_url: Option<String>,
        /// A claim's visibility deadline is `completion_timeout_ms` plus this margin (default 10 000):
        /// the time a dead worker's steps stay invisible before another worker may claim them.
        #[serde(default)]
        visibility_margin_ms: Option<u64>,
        /// How long bootstrap keeps trying to reach the store (default 10 000).
        #[serde(default)]
        connect_timeout_ms: Option<u64>,
        /// How often the worker refreshes the store's step counts for `metrics` (default 1000; 0: never).
        #[serde(default)]
        status_interval_ms: Option<u64>,
    },
}

impl Default for SourceConfig {
    /// The step store, at the URL [`WorkerConfig::store_url`] resolves: a worker fed fabricated events when
    /// nobody asked for them would fail its user silently.
    fn default() -> Self {
        Self::Store {
            database_url: None,
            visibility_margin_ms: None,
            connect_timeout_ms: None,
            status_interval_ms: None,
        }
    }
}

impl SourceConfig {
    /// The synthetic source with every option at its default (unlimited events, the fixture's size).
    pub fn synthetic() -> Self {
        Self::Synthetic {
            count: None,
            rate_per_sec: None,
            event_bytes: None,
            event_bytes_max: None,
            stamp_enqueued_at: false,
        }
    }
}

/// Everything `bootstrap_worker` accepts.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Task namespace this worker serves (the seed's field; informational for the synthetic source).
    pub namespace: String,
    /// Log level for the worker's tracing output: error, warn, info, debug or trace.
    pub log_level: String,
    /// Whether the library prints its log records to stderr (default true). The records are buffered for
    /// `poll_worker_logs` either way; a TS worker that forwards them to its own logger passes false so
    /// they are not printed twice. Like `log_level`, only the first bootstrap in a process sets it.
    pub log_stderr: bool,
    /// `ring` (default) or `ffi`.
    pub transport: Transport,
    /// Directory for the region file (default `/dev/shm` on Linux).
    pub region_dir: Option<PathBuf>,
    /// Events ring capacity in bytes (a power of two).
    pub events_capacity: u32,
    /// Completions ring capacity in bytes (a power of two).
    pub completions_capacity: u32,
    /// Largest frame in either ring.
    pub max_frame_size: u32,
    /// Largest message (an event or a completion) after reassembly.
    pub max_message_size: u64,
    /// Events claimed but not yet polled, at most, on the `ffi` transport (its "ring").
    pub ffi_queue_capacity: usize,
    /// In flight longer than this: failed as `ffi_timeout` by `cleanup_timeouts`.
    pub completion_timeout_ms: u64,
    /// In flight longer than this: reported as starving.
    pub starvation_threshold_ms: u64,
    /// How long a graceful shutdown waits for in-flight events before failing them.
    pub shutdown_timeout_ms: u64,
    /// The step store's URL, at the top level so a seed-style config (`namespace`, `log_level`,
    /// `database_url`) reaches the store; it wins over `source.database_url` (see
    /// [`WorkerConfig::store_url`]). Refused with the synthetic source, which reads no store.
    pub database_url: Option<String>,
    /// The event source (default: the step store).
    pub source: SourceConfig,
    /// Task templates to register at bootstrap (tasker-core's task-template format): a `.json`, `.yaml` or
    /// `.yml` file, or a directory of them (absent: a non-empty `TASKER_TEMPLATE_PATH`, else none).
    pub templates_path: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            namespace: "default".to_string(),
            log_level: "info".to_string(),
            log_stderr: true,
            transport: Transport::Ring,
            region_dir: None,
            events_capacity: 4 << 20,
            completions_capacity: 1 << 20,
            max_frame_size: 64 << 10,
            max_message_size: 64 << 20,
            ffi_queue_capacity: 1024,
            completion_timeout_ms: 30_000,
            starvation_threshold_ms: 10_000,
            shutdown_timeout_ms: 30_000,
            database_url: None,
            source: SourceConfig::default(),
            templates_path: None,
        }
    }
}

/// The keys of [`WorkerConfig`], in declaration order (checked against serde's list by a test).
pub const WORKER_KEYS: &[&str] = &[
    "namespace",
    "log_level",
    "log_stderr",
    "transport",
    "region_dir",
    "events_capacity",
    "completions_capacity",
    "max_frame_size",
    "max_message_size",
    "ffi_queue_capacity",
    "completion_timeout_ms",
    "starvation_threshold_ms",
    "shutdown_timeout_ms",
    "database_url",
    "source",
    "templates_path",
];
/// The keys of `source` with `kind: "synthetic"`.
pub const SYNTHETIC_KEYS: &[&str] = &[
    "kind",
    "count",
    "rate_per_sec",
    "event_bytes",
    "event_bytes_max",
    "stamp_enqueued_at",
];
/// The keys of `source` with `kind: "store"`.
pub const STORE_KEYS: &[&str] = &[
    "kind",
    "database_url",
    "visibility_margin_ms",
    "connect_timeout_ms",
    "status_interval_ms",
];
/// The values of `source.kind`.
pub const SOURCE_KINDS: &[&str] = &["store", "synthetic"];
/// The values of `log_level`.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Where in the configuration an unknown key was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSection {
    /// The top level.
    Top,
    /// `source` with `kind: "synthetic"`.
    SyntheticSource,
    /// `source` with `kind: "store"`.
    StoreSource,
}

impl ConfigSection {
    /// The keys this section accepts.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Top => WORKER_KEYS,
            Self::SyntheticSource => SYNTHETIC_KEYS,
            Self::StoreSource => STORE_KEYS,
        }
    }
}

/// Why a bootstrap configuration was refused. `Display` starts with what is wrong and names the keys or
/// values that would be right; [`source`](std::error::Error::source) returns the JSON or ring error under
/// it.
#[derive(Debug)]
pub enum WorkerConfigError {
    /// Not JSON, not an object, or a value of the wrong type.
    Json(serde_json::Error),
    /// A key no section of the configuration has.
    UnknownKey {
        /// Where it was found.
        section: ConfigSection,
        /// The key as written.
        key: String,
        /// The existing key it most likely meant (a small edit away, or the same but for case and `_`).
        suggestion: Option<&'static str>,
        /// The section the key belongs to, when it exists elsewhere (`count` at the top level).
        belongs_in: Option<ConfigSection>,
    },
    /// `source.kind` is neither `store` nor `synthetic` (or is missing).
    UnknownSourceKind {
        /// The kind as written (None: missing or not a string).
        kind: Option<String>,
        /// The kind it most likely meant.
        suggestion: Option<&'static str>,
    },
    /// `log_level` is not one of [`LOG_LEVELS`].
    LogLevel(String),
    /// A setting that must be positive is 0.
    NotPositive(&'static str),
    /// A `database_url` is empty or blank (`key` says which of the two).
    EmptyDatabaseUrl(&'static str),
    /// A top-level `database_url` with the synthetic source, which reads no store.
    DatabaseUrlWithSynthetic,
    /// The ring sizes are not a valid region.
    Ring(tasker_ring::ConfigError),
}

fn backticked(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for WorkerConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid bootstrap config: {e}"),
            Self::UnknownKey {
                section,
                key,
                suggestion,
                belongs_in,
            } => {
                let place = match section {
                    ConfigSection::Top => "",
                    ConfigSection::SyntheticSource => " in `source` (kind `synthetic`)",
                    ConfigSection::StoreSource => " in `source` (kind `store`)",
                };
                write!(f, "invalid bootstrap config: unknown field `{key}`{place}")?;
                match (suggestion, belongs_in) {
                    (Some(s), _) => write!(f, "; did you mean `{s}`?")?,
                    (None, Some(ConfigSection::Top)) => write!(f, "; `{key}` belongs at the top level")?,
                    (None, Some(ConfigSection::SyntheticSource)) => {
                        write!(f, "; `{key}` belongs in `source` with kind `synthetic`")?
                    }
                    (None, Some(ConfigSection::StoreSource)) => {
                        write!(f, "; `{key}` belongs in `source` with kind `store`")?
                    }
                    (None, None) => {}
                }
                write!(f, " (the keys here: {})", backticked(section.keys()))
            }
            Self::UnknownSourceKind { kind, suggestion } => {
                match kind {
                    Some(kind) => write!(f, "invalid bootstrap config: unknown source kind `{kind}`")?,
                    None => write!(f, "invalid bootstrap config: `source` needs a string `kind`")?,
                }
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                write!(f, " (kinds: {})", backticked(SOURCE_KINDS))
            }
            Self::LogLevel(level) => write!(f, "invalid log_level {level:?}: use error, warn, info, debug or trace"),
            Self::NotPositive(key) => write!(f, "{key} must be positive"),
            Self::EmptyDatabaseUrl(key) => write!(f, "{key} is empty: omit it for the default store"),
            Self::DatabaseUrlWithSynthetic => write!(
                f,
                "database_url names a step store, but source.kind is `synthetic` (fabricated events, no \
                 store): drop one of them"
            ),
            Self::Ring(e) => write!(f, "invalid ring settings: {e}"),
        }
    }
}

impl std::error::Error for WorkerConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            Self::Ring(e) => Some(e),
            _ => None,
        }
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), on bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The candidate `written` most likely meant: the same key but for case, `_` and `-` (`databaseUrl`), else
/// the nearest within a third of its length (at least one edit), as rustc suggests names. None when nothing
/// is that close.
pub fn closest_key(written: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let flat = squash(written);
    if let Some(same) = candidates.iter().find(|c| squash(c) == flat) {
        return Some(same);
    }
    let limit = (written.len().max(3) / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&written.to_ascii_lowercase(), c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Refuses the first key of `object` that `section` does not have, naming the closest existing one.
fn check_keys(object: &serde_json::Map<String, Value>, section: ConfigSection) -> Result<(), WorkerConfigError> {
    let keys = section.keys();
    let Some(unknown) = object.keys().find(|k| !keys.contains(&k.as_str())) else {
        return Ok(());
    };
    let belongs_in = [
        ConfigSection::Top,
        ConfigSection::SyntheticSource,
        ConfigSection::StoreSource,
    ]
    .into_iter()
    .find(|s| *s != section && s.keys().contains(&unknown.as_str()));
    Err(WorkerConfigError::UnknownKey {
        section,
        key: unknown.clone(),
        suggestion: if belongs_in.is_some() {
            None
        } else {
            closest_key(unknown, keys)
        },
        belongs_in,
    })
}

/// Checks the keys of a parsed configuration (top level, then `source` by its kind) before serde reads it,
/// so that an unknown key is answered with the one meant.
fn check_all_keys(value: &Value) -> Result<(), WorkerConfigError> {
    let Value::Object(top) = value else {
        return Ok(()); // serde says what is wrong with a non-object
    };
    check_keys(top, ConfigSection::Top)?;
    let Some(Value::Object(source)) = top.get("source") else {
        return Ok(());
    };
    let section = match source.get("kind") {
        Some(Value::String(k)) if k == "store" => ConfigSection::StoreSource,
        Some(Value::String(k)) if k == "synthetic" => ConfigSection::SyntheticSource,
        Some(Value::String(k)) => {
            return Err(WorkerConfigError::UnknownSourceKind {
                kind: Some(k.clone()),
                suggestion: closest_key(k, SOURCE_KINDS),
            })
        }
        _ => {
            return Err(WorkerConfigError::UnknownSourceKind {
                kind: None,
                suggestion: None,
            })
        }
    };
    check_keys(source, section)
}

impl WorkerConfig {
    /// Parses the bootstrap JSON (`{}` or empty text gives the defaults).
    pub fn from_json(text: &str) -> Result<Self, WorkerConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_str(text).map_err(WorkerConfigError::Json)?;
        check_all_keys(&value)?;
        let config: Self = serde_json::from_value(value).map_err(WorkerConfigError::Json)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), WorkerConfigError> {
        if !LOG_LEVELS.contains(&self.log_level.as_str()) {
            return Err(WorkerConfigError::LogLevel(self.log_level.clone()));
        }
        if self.completion_timeout_ms == 0 {
            return Err(WorkerConfigError::NotPositive("completion_timeout_ms"));
        }
        if self.ffi_queue_capacity == 0 {
            return Err(WorkerConfigError::NotPositive("ffi_queue_capacity"));
        }
        if self.database_url.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err(WorkerConfigError::EmptyDatabaseUrl("database_url"));
        }
        match &self.source {
            SourceConfig::Store {
                database_url: Some(url),
                ..
            } if url.trim().is_empty() => return Err(WorkerConfigError::EmptyDatabaseUrl("source.database_url")),
            SourceConfig::Synthetic { .. } if self.database_url.is_some() => {
                return Err(WorkerConfigError::DatabaseUrlWithSynthetic)
            }
            _ => {}
        }
        self.region_config().validate().map_err(WorkerConfigError::Ring)
    }

    /// The step store this configuration reads (None for the synthetic source): the top-level
    /// `database_url`, else `source.database_url`, else a non-empty `TASKER_DATABASE_URL`, else
    /// `tasker.db` in the working directory.
    pub fn store_url(&self) -> Option<String> {
        match &self.source {
            SourceConfig::Store { database_url, .. } => Some(tasker_store::resolve_url(
                self.database_url.as_deref().or(database_url.as_deref()),
            )),
            SourceConfig::Synthetic { .. } => None,
        }
    }

    /// The largest step event the ring transport can hand to TS (`None` on the ffi transport). The events
    /// ring takes each event whole, so this is the largest message whose worst-case footprint (its frames
    /// plus the padding before the first, [`tasker_ring::RingLimits::worst_case_footprint`]) fits the events
    /// ring, at most `max_message_size`. A larger event fails permanently (`dispatch_error`); bootstrap warns
    /// when this is below `max_message_size`.
    pub fn max_event_bytes(&self) -> Option<u64> {
        let limits = tasker_ring::RingLimits {
            max_frame: self.max_frame_size,
            max_message: self.max_message_size,
        };
        (self.transport == Transport::Ring).then(|| limits.largest_message_in(u64::from(self.events_capacity)))
    }

    /// The region sizes this configuration asks for.
    pub fn region_config(&self) -> tasker_ring::RegionConfig {
        tasker_ring::RegionConfig {
            events_capacity: self.events_capacity,
            completions_capacity: self.completions_capacity,
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            initial_position: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        WorkerConfig::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_unknown_keys_and_bad_values() {
        assert_eq!(WorkerConfig::from_json("").unwrap(), WorkerConfig::default());
        let c =
            WorkerConfig::from_json(r#"{"namespace":"ns","transport":"ffi","source":{"kind":"synthetic","count":5}}"#)
                .unwrap();
        assert_eq!(c.transport, Transport::Ffi);
        assert!(c.log_stderr, "log_stderr defaults to true");
        assert!(!WorkerConfig::from_json(r#"{"log_stderr":false}"#).unwrap().log_stderr);
        assert!(WorkerConfig::from_json(r#"{"log_stderr":"no"}"#).is_err());
        assert_eq!(
            c.source,
            SourceConfig::Synthetic {
                count: Some(5),
                rate_per_sec: None,
                event_bytes: None,
                event_bytes_max: None,
                stamp_enqueued_at: false
            }
        );
        let stamped = WorkerConfig::from_json(
            r#"{"source":{"kind":"synthetic","count":5,"rate_per_sec":10,"stamp_enqueued_at":true}}"#,
        )
        .unwrap();
        assert!(matches!(
            stamped.source,
            SourceConfig::Synthetic {
                stamp_enqueued_at: true,
                rate_per_sec: Some(10),
                ..
            }
        ));
        assert!(
            WorkerConfig::from_json(r#"{"source":{"kind":"synthetic","stamp_enqueued_at":1}}"#).is_err(),
            "stamp_enqueued_at is a boolean"
        );
        assert!(err(r#"{"transport":"pigeon"}"#).contains("pigeon"));
        assert!(err(r#"{"log_level":"loud"}"#).contains("log_level"));
        assert!(err(r#"{"events_capacity":1000}"#).contains("ring settings"));
        assert!(err(r#"{"completion_timeout_ms":0}"#).contains("completion_timeout_ms must be positive"));
        assert!(err(r#"{"ffi_queue_capacity":0}"#).contains("ffi_queue_capacity must be positive"));
        assert!(err("{").starts_with("invalid bootstrap config"));
        assert!(err("[1]").starts_with("invalid bootstrap config"));
        let store = WorkerConfig::from_json(r#"{"source":{"kind":"store","database_url":"sqlite:x.db"}}"#).unwrap();
        assert!(matches!(store.source, SourceConfig::Store { database_url: Some(ref u), .. } if u == "sqlite:x.db"));
        assert!(err(r#"{"source":{"kind":"store","database_url":" "}}"#).contains("source.database_url is empty"));
        assert!(err(r#"{"database_url":""}"#).starts_with("database_url is empty"));
    }

    #[test]
    fn the_store_is_the_default_source_and_the_top_level_url_wins() {
        let default = WorkerConfig::from_json("{}").unwrap();
        assert_eq!(default.source, SourceConfig::default());
        assert!(matches!(default.source, SourceConfig::Store { database_url: None, .. }));
        let seed = WorkerConfig::from_json(r#"{"namespace":"payments","log_level":"warn"}"#).unwrap();
        assert!(
            matches!(seed.source, SourceConfig::Store { .. }),
            "a seed-style config reads the store"
        );
        let url = |text: &str| WorkerConfig::from_json(text).unwrap().store_url();
        assert_eq!(
            url(r#"{"database_url":"sqlite:top.db"}"#).as_deref(),
            Some("sqlite:top.db")
        );
        assert_eq!(
            url(r#"{"source":{"kind":"store","database_url":"sqlite:inner.db"}}"#).as_deref(),
            Some("sqlite:inner.db")
        );
        assert_eq!(
            url(r#"{"database_url":"sqlite:top.db","source":{"kind":"store","database_url":"sqlite:inner.db"}}"#)
                .as_deref(),
            Some("sqlite:top.db"),
            "the top level wins over source.database_url"
        );
        assert_eq!(
            url(r#"{"source":{"kind":"synthetic"}}"#),
            None,
            "the synthetic source reads no store"
        );
        // Without either URL it is tasker_store::resolve_url's (TASKER_DATABASE_URL, else tasker.db); that
        // part reads the environment and is tested where the environment is the test's own (TS child
        // processes, the C API test).
        assert_eq!(url("{}"), Some(tasker_store::resolve_url(None)));
        let e = WorkerConfig::from_json(r#"{"database_url":"sqlite:x.db","source":{"kind":"synthetic"}}"#).unwrap_err();
        assert!(matches!(e, WorkerConfigError::DatabaseUrlWithSynthetic), "{e}");
    }

    #[test]
    fn an_unknown_key_names_the_one_meant() {
        let e = WorkerConfig::from_json(r#"{"namespcae":"x"}"#).unwrap_err();
        assert!(
            matches!(&e, WorkerConfigError::UnknownKey { section: ConfigSection::Top, key, suggestion: Some("namespace"), belongs_in: None } if key == "namespcae"),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("invalid bootstrap config: unknown field `namespcae`; did you mean `namespace`?"),
            "{text}"
        );
        assert!(
            text.contains("`log_level`, `log_stderr`"),
            "the keys that exist are listed: {text}"
        );
        assert!(err(r#"{"databaseUrl":"x"}"#).contains("did you mean `database_url`?"));
        assert!(err(r#"{"log_levle":"x"}"#).contains("did you mean `log_level`?"));
        assert!(err(r#"{"source":{"kind":"synthetic","cuont":1}}"#)
            .contains("unknown field `cuont` in `source` (kind `synthetic`); did you mean `count`?"));
        assert!(err(r#"{"source":{"kind":"store","databse_url":"x"}}"#)
            .contains("unknown field `databse_url` in `source` (kind `store`); did you mean `database_url`?"));
        // Nothing close: no guess, the list only.
        let far = err(r#"{"zebra":1}"#);
        assert!(
            far.contains("unknown field `zebra` (the keys here: `namespace`"),
            "{far}"
        );
        assert!(!far.contains("did you mean"), "{far}");
        // A key of another section says where it belongs.
        assert!(err(r#"{"count":5}"#).contains("`count` belongs in `source` with kind `synthetic`"));
        assert!(err(r#"{"source":{"kind":"store","count":5}}"#)
            .contains("`count` belongs in `source` with kind `synthetic`"));
        assert!(
            err(r#"{"source":{"kind":"synthetic","namespace":"x"}}"#).contains("`namespace` belongs at the top level")
        );
        assert!(err(r#"{"source":{"kind":"stroe"}}"#).contains("unknown source kind `stroe`; did you mean `store`?"));
        assert!(err(r#"{"source":{}}"#).contains("`source` needs a string `kind`"));
    }

    #[test]
    fn closest_key_is_conservative() {
        assert_eq!(closest_key("namespcae", WORKER_KEYS), Some("namespace"));
        assert_eq!(closest_key("NAMESPACE", WORKER_KEYS), Some("namespace"));
        assert_eq!(closest_key("regionDir", WORKER_KEYS), Some("region_dir"));
        assert_eq!(closest_key("transprt", WORKER_KEYS), Some("transport"));
        assert_eq!(closest_key("sauce", WORKER_KEYS), None);
        assert_eq!(closest_key("x", WORKER_KEYS), None);
        assert_eq!(closest_key("", WORKER_KEYS), None);
        assert_eq!(edit_distance("ab", "ba"), 1, "a transposition is one edit");
        assert_eq!(edit_distance("", "abc"), 3);
    }

    /// The key lists the suggestions use are serde's own: a field added to a struct and not to its list
    /// fails here.
    #[test]
    fn the_key_lists_match_the_structs() {
        fn serde_keys(text: &str) -> Vec<String> {
            let e = match serde_json::from_str::<WorkerConfig>(text) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{text} parsed"),
            };
            let list = e.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{e}"));
            let list = list.split(" at line").next().unwrap();
            let mut keys: Vec<String> = list.split(", ").map(|k| k.trim_matches('`').to_string()).collect();
            keys.sort();
            keys
        }
        let sorted = |keys: &[&str]| {
            let mut k: Vec<String> = keys.iter().filter(|k| **k != "kind").map(|k| k.to_string()).collect();
            k.sort();
            k
        };
        assert_eq!(serde_keys(r#"{"zz":1}"#), sorted(WORKER_KEYS));
        assert_eq!(
            serde_keys(r#"{"source":{"kind":"synthetic","zz":1}}"#),
            sorted(SYNTHETIC_KEYS)
        );
        assert_eq!(serde_keys(r#"{"source":{"kind":"store","zz":1}}"#), sorted(STORE_KEYS));
    }
}
