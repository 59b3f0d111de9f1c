//! One unified-log record as `log stream|show --style ndjson` prints it:
//! telling it from an eslogger line, and reading it leniently (a key of an
//! unexpected type reads as missing).

use serde::{Deserialize, Deserializer};

/// Whether a JSON line is a unified-log record rather than an eslogger one.
pub fn looks_like_unified_log(line: &[u8]) -> bool {
    use memchr::memmem::find;
    find(line, b"\"event_type\"").is_none()
        && (find(line, b"\"eventMessage\"").is_some() || find(line, b"\"eventType\"").is_some())
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// One unified-log record (the keys this module reads; others are ignored).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct LogRecord {
    #[serde(rename = "eventMessage", deserialize_with = "lenient_string")]
    pub event_message: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subsystem: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub category: Option<String>,
    #[serde(rename = "processImagePath", deserialize_with = "lenient_string")]
    pub process_image_path: Option<String>,
    #[serde(rename = "senderImagePath", deserialize_with = "lenient_string")]
    pub sender_image_path: Option<String>,
    #[serde(rename = "processID", deserialize_with = "lenient_i64")]
    pub process_id: Option<i64>,
    #[serde(rename = "userID", deserialize_with = "lenient_i64")]
    pub user_id: Option<i64>,
    #[serde(rename = "threadID", deserialize_with = "lenient_u64")]
    pub thread_id: Option<u64>,
    #[serde(rename = "machTimestamp", deserialize_with = "lenient_u64")]
    pub mach_timestamp: Option<u64>,
    #[serde(deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    #[serde(rename = "messageType", deserialize_with = "lenient_string")]
    pub message_type: Option<String>,
    #[serde(rename = "eventType", deserialize_with = "lenient_string")]
    pub event_type: Option<String>,
    #[serde(rename = "formatString", deserialize_with = "lenient_string")]
    pub format_string: Option<String>,
}

/// Parse one record (a JSON object; anything else is an error).
pub fn parse_record(line: &str) -> Result<LogRecord, serde_json::Error> {
    if !line.trim_start().starts_with('{') {
        return Err(serde::de::Error::custom(
            "a unified-log record is a JSON object",
        ));
    }
    serde_json::from_str(line)
}
