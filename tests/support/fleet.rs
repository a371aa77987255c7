//! A generated fleet with a known drift set, shared by the correctness test and
//! the fleet benchmark: committed configs in JSON, YAML and TOML through a shared
//! schema; running configs with cosmetic noise (key order, `12` written `12.0`,
//! omitted defaults, shuffled sets and keyed items) that must never read as drift,
//! and real drifts on a known subset of bots.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::{Map, Value, json};

/// The schema every generated bot shares.
pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "market": {
      "type": "object",
      "properties": {
        "id": { "type": "string" },
        "max_usd": { "type": "number" },
        "spread_bps": { "type": "integer", "default": 5 },
        "updated_at": { "type": "string", "x-drift-ignore": true }
      }
    }
  },
  "properties": {
    "bot": { "type": "object", "properties": { "name": { "type": "string" }, "enabled": { "type": "boolean", "default": true } } },
    "limits": { "type": "object", "additionalProperties": { "type": "number" } },
    "tuning": { "type": "object", "properties": { "alpha": { "type": "number", "default": 0.25 }, "beta": { "type": "number", "default": 3 } } },
    "venues": { "type": "array", "uniqueItems": true, "items": { "type": "string" } },
    "per_market": { "type": "array", "x-drift-key": "id", "items": { "$ref": "#/$defs/market" } },
    "params": { "type": "object", "additionalProperties": { "type": "number" } },
    "api_key": { "type": "string", "x-drift-secret": true },
    "runtime": { "type": "object", "x-drift-ignore": true }
  }
}"##;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}

pub struct GeneratedBot {
    pub slug: String,
    pub format: Format,
    pub committed_text: String,
    /// The committed config as plain JSON (for baselines that read only JSON).
    pub committed_json: String,
    pub running_json: String,
    /// Paths (contract syntax) that must be reported, and nothing else.
    pub expected: BTreeSet<String>,
}

/// A small deterministic PRNG (xorshift64*), so fleets are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `count` bots; every `drift_every`-th bot drifts in one to three fields.
pub fn generate(count: usize, drift_every: usize, seed: u64) -> Vec<GeneratedBot> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| generate_bot(i, drift_every, &mut rng))
        .collect()
}

fn generate_bot(i: usize, drift_every: usize, rng: &mut Rng) -> GeneratedBot {
    let slug = format!("bot-{i:05}.mm");
    let format = [Format::Json, Format::Yaml, Format::Toml][i % 3];
    let mut limits = Map::new();
    for k in 0..10 {
        limits.insert(format!("l{k}"), json!(rng.below(10_000)));
    }
    let mut params = Map::new();
    for k in 0..20 {
        let v = rng.below(1_000_000) as f64 / 1000.0;
        params.insert(format!("p{k:02}"), json!(v));
    }
    let markets: Vec<Value> = (0..5)
        .map(|m| json!({ "id": format!("m{m}"), "max_usd": rng.below(5000), "spread_bps": 5 + (m % 2) * 3, "updated_at": "2026-01-01" }))
        .collect();
    let committed = json!({
        "bot": { "name": slug, "enabled": true },
        "limits": limits,
        "tuning": { "alpha": 0.25, "beta": 4 },
        "venues": ["binance", "coinbase", "kraken"],
        "per_market": markets,
        "params": params,
        "api_key": format!("sk-{}", rng.next()),
    });

    let mut running = committed.clone();
    let mut expected = BTreeSet::new();
    if drift_every > 0 && i.is_multiple_of(drift_every) {
        let drifts = 1 + rng.below(3);
        for _ in 0..drifts {
            match rng.below(6) {
                0 => {
                    let k = format!("p{:02}", rng.below(20));
                    let v = running["params"][&k].as_f64().unwrap_or(0.0) + 1.0;
                    running["params"][&k] = json!(v);
                    expected.insert(format!("params.{k}"));
                }
                1 => {
                    let m = rng.below(5) as usize;
                    let v = running["per_market"][m]["max_usd"].as_u64().unwrap_or(0) + 7;
                    running["per_market"][m]["max_usd"] = json!(v);
                    expected.insert(format!("per_market[id=\"m{m}\"].max_usd"));
                }
                2 => {
                    if let Some(v) = running["venues"].as_array_mut()
                        && !v.iter().any(|x| x == "okx")
                    {
                        v.push(json!("okx"));
                    }
                    expected.insert("venues[=\"okx\"]".into());
                }
                3 => {
                    running["limits"]["l_extra"] = json!(1);
                    expected.insert("limits.l_extra".into());
                }
                4 => {
                    running["tuning"]["beta"] = json!(3);
                    expected.insert("tuning.beta".into());
                }
                _ => {
                    running["bot"]["enabled"] = json!(false);
                    expected.insert("bot.enabled".into());
                }
            }
        }
    }
    // Noise that must not read as drift: fields ignored by the schema, defaults
    // left out where the committed side spells them.
    running["runtime"] = json!({ "started_at": 1_700_000_000_000u64 + i as u64 });
    for m in running["per_market"].as_array_mut().into_iter().flatten() {
        m["updated_at"] = json!("2026-11-25T00:00:00Z");
        if m["spread_bps"] == json!(5) {
            m.as_object_mut().map(|o| o.remove("spread_bps"));
        }
    }
    if running["tuning"]["alpha"] == json!(0.25) {
        running["tuning"].as_object_mut().map(|o| o.remove("alpha"));
    }

    let committed_text = match format {
        Format::Json => committed.to_string(),
        Format::Yaml => to_yaml(&committed),
        Format::Toml => toml::to_string(&committed).unwrap_or_default(),
    };
    let running_json = to_noisy_json(&running, rng);
    let committed_json = committed.to_string();
    GeneratedBot {
        slug,
        format,
        committed_text,
        committed_json,
        running_json,
        expected,
    }
}

/// JSON with keys and array items in a shuffled order, integral numbers written as
/// floats; sets and keyed arrays are order-free, positional arrays keep order.
fn to_noisy_json(v: &Value, rng: &mut Rng) -> String {
    let mut out = String::new();
    write_noisy(v, rng, &mut out, false);
    out
}

fn write_noisy(v: &Value, rng: &mut Rng, out: &mut String, shuffle_items: bool) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            shuffle(&mut keys, rng);
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: ", Value::String((*k).clone()));
                let order_free = *k == "venues" || *k == "per_market";
                write_noisy(&m[*k], rng, out, order_free);
            }
            out.push('}');
        }
        Value::Array(a) => {
            let mut items: Vec<&Value> = a.iter().collect();
            if shuffle_items {
                shuffle(&mut items, rng);
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_noisy(item, rng, out, false);
            }
            out.push(']');
        }
        Value::Number(n) if n.is_u64() && rng.below(2) == 0 => {
            let _ = write!(out, "{n}.0");
        }
        other => out.push_str(&other.to_string()),
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Block-style YAML for the generated shapes (maps, sequences, scalars).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_yaml_map(v.as_object().expect("an object"), 0, &mut out);
    out
}

fn write_yaml_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{k}:");
                write_yaml_map(inner, indent + 2, out);
            }
            Value::Array(items) if !items.is_empty() => {
                let _ = writeln!(out, "{pad}{k}:");
                for item in items {
                    match item {
                        Value::Object(inner) => {
                            let mut first = true;
                            for (ik, iv) in inner {
                                let lead = if first {
                                    format!("{pad}- ")
                                } else {
                                    format!("{pad}  ")
                                };
                                first = false;
                                let _ = writeln!(out, "{lead}{ik}: {}", iv);
                            }
                        }
                        scalar => {
                            let _ = writeln!(out, "{pad}- {scalar}");
                        }
                    }
                }
            }
            scalar => {
                let _ = writeln!(out, "{pad}{k}: {scalar}");
            }
        }
    }
}
