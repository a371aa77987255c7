//! The crate's own config values for tests that call the library in process
//! (`Fetcher`, `check`) rather than the binary: a `[runtime]` section and bot
//! entries, as `config::load` would have built them from a file.

use std::time::Duration;

use config_drift_detector::config::{Bot, BotSlug, Header, RuntimeConfig, RuntimeSource};

pub fn runtime_config(timeout_ms: u64, max_in_flight: usize, max_body_bytes: u64) -> RuntimeConfig {
    RuntimeConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight,
        max_body_bytes,
        latency_budget: Duration::from_secs(5),
        headers: Vec::new(),
        ca_file: None,
        client_cert: None,
        client_key: None,
    }
}

pub fn bot(slug: &str, runtime: RuntimeSource) -> Bot {
    Bot {
        slug: BotSlug::parse(slug).expect("test slugs are valid"),
        runtime,
        config_path: format!("bots/{slug}.json"),
        schema_path: None,
        headers: Vec::new(),
    }
}

pub fn http_bot(slug: &str, url: String) -> Bot {
    bot(slug, RuntimeSource::Http(url))
}

pub fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}
