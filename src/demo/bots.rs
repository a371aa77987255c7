//! Simulated bots for the demo: one loopback HTTP/1.1 server that serves each bot's
//! running config at `GET /bots/{slug}/config` and has an admin endpoint,
//! `POST /bots/{slug}/admin` with `{"set": {"field": value}}`, that edits it live
//! the way an on-call does in a bot's admin UI.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

type Fleet = Arc<Mutex<BTreeMap<String, serde_json::Value>>>;

pub struct SimulatedBots {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SimulatedBots {
    /// Starts serving `configs` (slug → running config) on 127.0.0.1.
    pub async fn start(
        configs: BTreeMap<String, serde_json::Value>,
    ) -> std::io::Result<SimulatedBots> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fleet: Fleet = Arc::new(Mutex::new(configs));
        let served = fleet;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fleet = Arc::clone(&served);
                tokio::spawn(async move {
                    let _ = serve(stream, fleet).await;
                });
            }
        });
        Ok(SimulatedBots { addr, task })
    }

    pub fn config_url(&self, slug: &str) -> String {
        format!("http://{}/bots/{slug}/config", self.addr)
    }

    pub fn admin_url(&self, slug: &str) -> String {
        format!("http://{}/bots/{slug}/admin", self.addr)
    }
}

impl Drop for SimulatedBots {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: tokio::net::TcpStream, fleet: Fleet) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; content_length.min(1 << 20)];
        reader.read_exact(&mut body).await?;
        let (status, reply) = route(&method, &path, &body, &fleet);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(reply.as_bytes()).await?;
    }
}

fn route(method: &str, path: &str, body: &[u8], fleet: &Fleet) -> (&'static str, String) {
    let not_found = ("404 Not Found", r#"{"error":"no such bot"}"#.to_owned());
    let Some(rest) = path.strip_prefix("/bots/") else {
        return not_found;
    };
    let Some((slug, action)) = rest.split_once('/') else {
        return not_found;
    };
    let Ok(mut fleet) = fleet.lock() else {
        return ("500 Internal Server Error", "{}".into());
    };
    let Some(config) = fleet.get_mut(slug) else {
        return not_found;
    };
    match (method, action) {
        ("GET", "config") => ("200 OK", config.to_string()),
        ("POST", "admin") => {
            let Ok(edit) = serde_json::from_slice::<serde_json::Value>(body) else {
                return ("400 Bad Request", r#"{"error":"body is not JSON"}"#.into());
            };
            let Some(set) = edit.get("set").and_then(|s| s.as_object()) else {
                return (
                    "400 Bad Request",
                    r#"{"error":"expected {\"set\": {…}}"}"#.into(),
                );
            };
            for (field, value) in set {
                set_dotted(config, field, value.clone());
            }
            ("200 OK", config.to_string())
        }
        _ => (
            "405 Method Not Allowed",
            r#"{"error":"method not allowed"}"#.into(),
        ),
    }
}

/// Sets `a.b.c` in `doc`, creating objects on the way.
fn set_dotted(doc: &mut serde_json::Value, field: &str, value: serde_json::Value) {
    let mut node = doc;
    let mut parts = field.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = serde_json::Value::Object(serde_json::Map::new());
        }
        let Some(obj) = node.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            obj.insert(part.to_owned(), value);
            return;
        }
        node = obj
            .entry(part.to_owned())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_edits_create_and_replace() {
        let mut v = serde_json::json!({"a": {"b": 1}});
        set_dotted(&mut v, "a.b", serde_json::json!(2));
        set_dotted(&mut v, "x.y", serde_json::json!(true));
        assert_eq!(v, serde_json::json!({"a": {"b": 2}, "x": {"y": true}}));
    }
}
