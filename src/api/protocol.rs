//! The admin API's vocabulary (§12), shared by the server (`handlers`) and the
//! command-line client (`cli::admin`): the routes' paths, the request bodies and
//! the answers' shapes. One definition, so the two ends cannot drift apart.
//!
//! Answers are serialised with their fields in name order, the order the API
//! has always written them in.

use serde::{Deserialize, Serialize};

use crate::agent::{AdminOutcome, Cleared};
use crate::latch::{Ack, Pause};

/// Where the API is served.
pub const PREFIX: &str = "/api/v1";

/// A client command, as the request it makes (paths under [`PREFIX`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Bots,
    Ack {
        slug: String,
        reason: String,
    },
    Approve {
        id: String,
    },
    Clear {
        slug: String,
        reason: String,
    },
    Pause {
        reason: String,
        duration: Option<String>,
    },
    Resume,
}

impl Call {
    /// The method, the path under [`PREFIX`] (its segments percent-encoded by
    /// `segment`) and the JSON body, if any.
    pub fn request(&self, segment: impl Fn(&str) -> String) -> (Method, String, Option<String>) {
        match self {
            Call::Bots => (Method::Get, "/bots".to_owned(), None),
            Call::Ack { slug, reason } => (
                Method::Post,
                format!("/bots/{}/acks", segment(slug)),
                json_body(&ReasonBody {
                    reason: Some(reason.clone()),
                }),
            ),
            Call::Approve { id } => (Method::Post, format!("/acks/{}/approve", segment(id)), None),
            Call::Clear { slug, reason } => (
                Method::Post,
                format!("/bots/{}/clear", segment(slug)),
                json_body(&ReasonBody {
                    reason: Some(reason.clone()),
                }),
            ),
            Call::Pause { reason, duration } => (
                Method::Post,
                "/pause".to_owned(),
                json_body(&PauseBody {
                    reason: Some(reason.clone()),
                    duration: duration.clone(),
                }),
            ),
            Call::Resume => (Method::Post, "/resume".to_owned(), None),
        }
    }
}

/// The two methods the admin API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// The body of an ack request and of a clear.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of a pause: why, and for how long (`for`, a duration such as `2h`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An ack as the API shows it (without its internal fingerprint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    pub bot_slug: String,
    pub episode_id: String,
    pub expires_at_ms: i64,
    pub id: String,
    pub reason: String,
    pub requested_at_ms: i64,
    pub requested_by: String,
    pub status: String,
}

impl From<&Ack> for AckView {
    fn from(a: &Ack) -> AckView {
        // Shown only together: an approval has both or it is not one.
        let (approved_by, approved_at_ms) = match (&a.approved_by, a.approved_at_ms) {
            (Some(by), Some(at)) => (Some(by.clone()), Some(at)),
            _ => (None, None),
        };
        AckView {
            approved_at_ms,
            approved_by,
            bot_slug: a.bot_slug.clone(),
            episode_id: a.episode_id.clone(),
            expires_at_ms: a.expires_at_ms,
            id: a.id.clone(),
            reason: a.reason.clone(),
            requested_at_ms: a.requested_at_ms,
            requested_by: a.requested_by.clone(),
            status: a.status.as_str().to_owned(),
        }
    }
}

/// The answer to a clear: the episode it resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClearedView {
    pub bot_slug: String,
    pub episode_id: String,
    pub resolution_minutes: f64,
    pub resolved_by: String,
}

impl From<&Cleared> for ClearedView {
    fn from(c: &Cleared) -> ClearedView {
        ClearedView {
            bot_slug: c.bot_slug.clone(),
            episode_id: c.episode_id.clone(),
            resolution_minutes: c.resolution_minutes,
            resolved_by: c.resolved_by.as_str().to_owned(),
        }
    }
}

/// The detector's pause as the API shows it: `{"paused": false}`, or the pause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// `null` for a pause until resumed; absent when not paused.
    #[serde(
        default,
        skip_serializing_if = "PauseUntil::is_absent",
        with = "pause_until"
    )]
    pub until_ms: PauseUntil,
}

/// `until_ms` of a pause view: absent (not paused), `null` (until resumed) or a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PauseUntil {
    #[default]
    Absent,
    Resumed,
    At(i64),
}

impl PauseUntil {
    fn is_absent(&self) -> bool {
        *self == PauseUntil::Absent
    }
}

mod pause_until {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::PauseUntil;

    pub fn serialize<S: Serializer>(u: &PauseUntil, s: S) -> Result<S::Ok, S::Error> {
        match u {
            PauseUntil::At(ms) => s.serialize_i64(*ms),
            PauseUntil::Absent | PauseUntil::Resumed => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PauseUntil, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map_or(PauseUntil::Resumed, PauseUntil::At))
    }
}

impl From<Option<&Pause>> for PauseView {
    fn from(p: Option<&Pause>) -> PauseView {
        match p {
            Some(p) => PauseView {
                by: Some(p.by.clone()),
                paused: true,
                reason: Some(p.reason.clone()),
                since_ms: Some(p.since_ms),
                until_ms: p.until_ms.map_or(PauseUntil::Resumed, PauseUntil::At),
            },
            None => PauseView {
                by: None,
                paused: false,
                reason: None,
                since_ms: None,
                until_ms: PauseUntil::Absent,
            },
        }
    }
}

/// An admin action's answer as the API writes it.
pub fn outcome_json(outcome: &AdminOutcome) -> String {
    let written = match outcome {
        AdminOutcome::Ack(a) => serde_json::to_string(&AckView::from(a)),
        AdminOutcome::Cleared(c) => serde_json::to_string(&ClearedView::from(c)),
        AdminOutcome::Pause(p) => serde_json::to_string(&PauseView::from(p.as_ref())),
    };
    // Plain data of strings and integers always serialises.
    written.unwrap_or_default()
}

/// A request body as JSON (plain strings always serialise).
fn json_body<T: Serialize>(body: &T) -> Option<String> {
    serde_json::to_string(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_views_keep_their_shapes() {
        let none = serde_json::to_value(PauseView::from(None)).unwrap();
        assert_eq!(none, serde_json::json!({ "paused": false }));
        let p = Pause {
            reason: "maintenance".into(),
            by: "ada".into(),
            since_ms: 5,
            until_ms: None,
        };
        let open = serde_json::to_value(PauseView::from(Some(&p))).unwrap();
        assert_eq!(
            open,
            serde_json::json!({ "paused": true, "reason": "maintenance", "by": "ada", "since_ms": 5, "until_ms": null })
        );
        let back: PauseView = serde_json::from_value(open).unwrap();
        assert_eq!(back.until_ms, PauseUntil::Resumed);
    }

    #[test]
    fn request_bodies_are_what_the_server_reads() {
        let (method, path, body) = Call::Pause {
            reason: "r".into(),
            duration: Some("2h".into()),
        }
        .request(|s| s.to_owned());
        assert_eq!((method, path.as_str()), (Method::Post, "/pause"));
        let read: PauseBody = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(read.duration.as_deref(), Some("2h"));
        let (_, path, body) = Call::Ack {
            slug: "a/b".into(),
            reason: "r".into(),
        }
        .request(|s| s.replace('/', "%2F"));
        assert_eq!(path, "/bots/a%2Fb/acks");
        let read: ReasonBody = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(read.reason.as_deref(), Some("r"));
    }
}
