//! The worker's bootstrap configuration: the seed's `BootstrapConfig` (`namespace`, `log_level`) plus the
//! transport, ring sizes, timeouts and the event source. Unknown keys are refused, so a typo is an error.

use serde::Deserialize;
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
    fn default() -> Self {
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
    /// The event source.
    pub source: SourceConfig,
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
            source: SourceConfig::default(),
        }
    }
}

impl WorkerConfig {
    /// Parses the bootstrap JSON (`{}` or empty text gives the defaults).
    pub fn from_json(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Self = serde_json::from_str(text).map_err(|e| format!("invalid bootstrap config: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.log_level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(format!(
                "invalid log_level {:?}: use error, warn, info, debug or trace",
                self.log_level
            ));
        }
        if self.completion_timeout_ms == 0 || self.ffi_queue_capacity == 0 {
            return Err("completion_timeout_ms and ffi_queue_capacity must be positive".to_string());
        }
        if let SourceConfig::Store {
            database_url: Some(url),
            ..
        } = &self.source
        {
            if url.trim().is_empty() {
                return Err("source.database_url is empty: omit it for the default store".to_string());
            }
        }
        self.region_config()
            .validate()
            .map_err(|e| format!("invalid ring settings: {e}"))
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
        let e = WorkerConfig::from_json(r#"{"namespcae":"x"}"#).unwrap_err();
        assert!(e.contains("unknown field `namespcae`"), "{e}");
        assert!(WorkerConfig::from_json(r#"{"transport":"pigeon"}"#).is_err());
        assert!(WorkerConfig::from_json(r#"{"log_level":"loud"}"#)
            .unwrap_err()
            .contains("log_level"));
        assert!(WorkerConfig::from_json(r#"{"events_capacity":1000}"#)
            .unwrap_err()
            .contains("ring settings"));
        assert!(WorkerConfig::from_json("{").is_err());
        let store = WorkerConfig::from_json(r#"{"source":{"kind":"store","database_url":"sqlite:x.db"}}"#).unwrap();
        assert!(matches!(store.source, SourceConfig::Store { database_url: Some(ref u), .. } if u == "sqlite:x.db"));
        assert!(
            WorkerConfig::from_json(r#"{"source":{"kind":"store","database_url":" "}}"#)
                .unwrap_err()
                .contains("database_url")
        );
        assert!(
            WorkerConfig::from_json(r#"{"source":{"kind":"store","databse_url":"x"}}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
