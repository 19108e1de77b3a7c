//! logrus-compatible log output (the host parses the GCS's JSON log stream, spec §1, port 109).
//!
//! JSON: one object per line, `{"level":"info","msg":"…","time":"<RFC3339Nano>",…fields}`.
//! Text: `time="…" level=info msg="…" key=value`, logrus's non-TTY text form.

use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::cli::LogFormat;

/// Maps a logrus level name to a tracing level (`None` = off, for panic/fatal-only).
pub fn parse_level(s: &str) -> Result<Option<Level>, String> {
    Ok(Some(match s.to_ascii_lowercase().as_str() {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "warn" | "warning" => Level::WARN,
        "error" => Level::ERROR,
        "fatal" | "panic" => return Ok(None),
        other => return Err(format!("not a valid logrus Level: {other:?}")),
    }))
}

fn logrus_level(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

/// RFC 3339 with nanoseconds, UTC, trailing zeros trimmed (Go's `time.RFC3339Nano`).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[derive(Default)]
struct Fields {
    msg: String,
    extra: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.extra.push((field.name(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.extra.push((field.name(), value.to_string()));
        }
    }
}

/// Formats one event as a logrus line.
pub fn format_line(
    format: LogFormat,
    level: &Level,
    fields_in: &[(&str, String)],
    msg: &str,
) -> String {
    let time = rfc3339_nano(SystemTime::now());
    match format {
        LogFormat::Json => {
            let mut m = serde_json::Map::new();
            for (k, v) in fields_in {
                m.insert((*k).to_string(), serde_json::Value::String(v.clone()));
            }
            m.insert("level".into(), logrus_level(level).into());
            m.insert("msg".into(), msg.into());
            m.insert("time".into(), time.into());
            let mut s = serde_json::Value::Object(m).to_string();
            s.push('\n');
            s
        }
        LogFormat::Text => {
            let quote = |v: &str| {
                if !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c))
                {
                    v.to_string()
                } else {
                    format!("{v:?}")
                }
            };
            let mut s = format!(
                "time={:?} level={} msg={}",
                time,
                logrus_level(level),
                quote(msg)
            );
            for (k, v) in fields_in {
                let _ = write!(s, " {k}={}", quote(v));
            }
            s.push('\n');
            s
        }
    }
}

struct LogrusLayer {
    format: LogFormat,
    out: Mutex<Box<dyn Write + Send>>,
}

impl<S: Subscriber> Layer<S> for LogrusLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let line = format_line(self.format, event.metadata().level(), &f.extra, &f.msg);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(line.as_bytes());
    }
}

/// Installs the global logger. `out` = `None` discards logs (closed-door policy stance).
pub fn init(format: LogFormat, level: Option<Level>, out: Option<Box<dyn Write + Send>>) {
    let filter = match (level, &out) {
        (Some(l), Some(_)) => tracing_subscriber::filter::LevelFilter::from_level(l),
        _ => tracing_subscriber::filter::LevelFilter::OFF,
    };
    let layer = LogrusLayer {
        format,
        out: Mutex::new(out.unwrap_or_else(|| Box::new(std::io::sink()))),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn json_line_is_logrus_shaped() {
        let l = format_line(
            LogFormat::Json,
            &Level::WARN,
            &[("cid", "abc".into())],
            "hi \"x\"",
        );
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["msg"], "hi \"x\"");
        assert_eq!(v["cid"], "abc");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_line_quotes_when_needed() {
        let l = format_line(
            LogFormat::Text,
            &Level::INFO,
            &[("k", "a b".into())],
            "started",
        );
        assert!(l.contains("level=info msg=started k=\"a b\""), "{l}");
        assert!(parse_level("bogus").is_err());
        assert_eq!(parse_level("warning").unwrap(), Some(Level::WARN));
    }
}
