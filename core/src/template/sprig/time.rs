//! Times: sprig's `now`, `date`, `dateInZone`, `htmlDate`, `unixEpoch`, `dateModify`,
//! `duration`, with Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`).
//!
//! `now` is the render's clock ([`super::NOW_KEY`], set by the engine from its `now`), never the
//! process clock when one was given, so tests and dry runs control it. Go's "Local" zone is UTC
//! here, as it is in ESO's container image.

use std::fmt;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use minijinja::value::{Object, Value, ValueKind};
use minijinja::{Error, State};

use super::{arg, fail, int_of, strval};

/// A Go `time.Time` in a template.
#[derive(Debug, Clone)]
pub(crate) struct GoTime(pub(crate) Zoned);

impl GoTime {
    pub(crate) fn value(zoned: Zoned) -> Value {
        Value::from_object(GoTime(zoned))
    }

    /// Go's `time.RFC3339Nano` layout, as `encoding/json` writes a time.
    pub(super) fn rfc3339_nano(&self) -> String {
        format_layout("2006-01-02T15:04:05.999999999Z07:00", &self.0)
    }
}

impl fmt::Display for GoTime {
    /// Go's `Time.String` (without the monotonic clock reading Go appends to `time.Now()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_layout(
            "2006-01-02 15:04:05.999999999 -0700 MST",
            &self.0,
        ))
    }
}

impl Object for GoTime {
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// The render's time: the context's clock, else the process clock.
pub(super) fn now(state: &State, _: &[Value]) -> Result<Value, Error> {
    if let Some(t) = state.lookup(super::NOW_KEY)
        && t.downcast_object_ref::<GoTime>().is_some()
    {
        return Ok(t);
    }
    Ok(GoTime::value(Timestamp::now().to_zoned(TimeZone::UTC)))
}

/// A time argument: a time, or an integer of Unix seconds; anything else is "now" (sprig).
fn time_arg(state: &State, value: &Value) -> Result<Zoned, Error> {
    if let Some(t) = value.downcast_object_ref::<GoTime>() {
        return Ok(t.0.clone());
    }
    if value.is_integer() {
        let secs = value.as_i64().unwrap_or(0);
        return Timestamp::from_second(secs)
            .map(|t| t.to_zoned(TimeZone::UTC))
            .map_err(|_| fail("date", "the Unix time is out of range"));
    }
    let now = now(state, &[])?;
    Ok(now
        .downcast_object_ref::<GoTime>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| Timestamp::now().to_zoned(TimeZone::UTC)))
}

fn zone(name: &str) -> Result<TimeZone, Error> {
    match name {
        "" | "UTC" | "Local" => Ok(TimeZone::UTC),
        _ => TimeZone::get(name).map_err(|_| fail("dateInZone", "unknown time zone")),
    }
}

/// `date FORMAT TIME`.
pub(super) fn date(state: &State, args: &[Value]) -> Result<Value, Error> {
    let layout = strval(arg("date", args, 0)?);
    let t = time_arg(state, arg("date", args, 1)?)?;
    Ok(Value::from(format_layout(&layout, &t)))
}

/// `dateInZone FORMAT TIME ZONE`.
pub(super) fn date_in_zone(state: &State, args: &[Value]) -> Result<Value, Error> {
    let layout = strval(arg("dateInZone", args, 0)?);
    let t = time_arg(state, arg("dateInZone", args, 1)?)?;
    let tz = zone(&strval(arg("dateInZone", args, 2)?))?;
    Ok(Value::from(format_layout(&layout, &t.with_time_zone(tz))))
}

/// `htmlDate TIME` (`2006-01-02`).
pub(super) fn html_date(state: &State, args: &[Value]) -> Result<Value, Error> {
    let t = time_arg(state, arg("htmlDate", args, 0)?)?;
    Ok(Value::from(format_layout("2006-01-02", &t)))
}

/// `unixEpoch TIME`: seconds since 1970 as a string.
pub(super) fn unix_epoch(state: &State, args: &[Value]) -> Result<Value, Error> {
    let t = time_arg(state, arg("unixEpoch", args, 0)?)?;
    Ok(Value::from(t.timestamp().as_second().to_string()))
}

/// `dateModify DURATION TIME`: the time moved by a Go duration (`-1.5h`, `1h30m`); an invalid
/// duration leaves the time unchanged (sprig). `mustDateModify` fails instead.
pub(super) fn date_modify(state: &State, args: &[Value], must: bool) -> Result<Value, Error> {
    let name = if must { "mustDateModify" } else { "dateModify" };
    let text = strval(arg(name, args, 0)?);
    let t = time_arg(state, arg(name, args, 1)?)?;
    match parse_go_duration(&text) {
        Some(nanos) => {
            let moved = t
                .checked_add(jiff::SignedDuration::from_nanos(
                    i64::try_from(nanos).map_err(|_| fail(name, "the duration is out of range"))?,
                ))
                .map_err(|_| fail(name, "the time is out of range"))?;
            Ok(GoTime::value(moved))
        }
        None if must => Err(fail(name, "invalid duration")),
        None => Ok(GoTime::value(t)),
    }
}

/// `duration SECONDS`: Go's `time.Duration` text (`1h1m5s`).
pub(super) fn duration(_: &State, args: &[Value]) -> Result<Value, Error> {
    let value = arg("duration", args, 0)?;
    let secs = if value.kind() == ValueKind::String {
        strval(value).trim().parse::<i64>().unwrap_or(0)
    } else {
        int_of(value)
    };
    Ok(Value::from(go_duration(secs)))
}

fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let n = secs.unsigned_abs();
    let (h, m, s) = (n / 3600, n % 3600 / 60, n % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats `t` with a Go reference-time layout (`Mon Jan 2 15:04:05 MST 2006`).
pub(crate) fn format_layout(layout: &str, t: &Zoned) -> String {
    let mut out = String::new();
    let b = layout.as_bytes();
    let mut i = 0;
    let starts = |i: usize, s: &str| layout[i..].starts_with(s);
    while i < b.len() {
        let month = t.month() as usize;
        let weekday = t.weekday().to_monday_zero_offset() as usize;
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let (token, text): (usize, String) = if starts(i, "January") {
            (7, MONTHS[month - 1].into())
        } else if starts(i, "Jan") {
            (3, MONTHS[month - 1][..3].into())
        } else if starts(i, "Monday") {
            (6, DAYS[weekday].into())
        } else if starts(i, "Mon") {
            (3, DAYS[weekday][..3].into())
        } else if starts(i, "MST") {
            (3, zone_abbreviation(t))
        } else if starts(i, "2006") {
            (4, format!("{:04}", t.year()))
        } else if starts(i, "002") {
            (3, format!("{:03}", t.day_of_year()))
        } else if starts(i, "01") {
            (2, format!("{month:02}"))
        } else if starts(i, "02") {
            (2, format!("{:02}", t.day()))
        } else if starts(i, "03") {
            (2, format!("{hour12:02}"))
        } else if starts(i, "04") {
            (2, format!("{:02}", t.minute()))
        } else if starts(i, "05") {
            (2, format!("{:02}", t.second()))
        } else if starts(i, "06") {
            (2, format!("{:02}", t.year().rem_euclid(100)))
        } else if starts(i, "15") {
            (2, format!("{:02}", t.hour()))
        } else if starts(i, "__2") {
            (3, format!("{:>3}", t.day_of_year()))
        } else if starts(i, "_2") && !starts(i, "_2006") {
            (2, format!("{:>2}", t.day()))
        } else if starts(i, "1") {
            (1, month.to_string())
        } else if starts(i, "2") {
            (1, t.day().to_string())
        } else if starts(i, "3") {
            (1, hour12.to_string())
        } else if starts(i, "4") {
            (1, t.minute().to_string())
        } else if starts(i, "5") {
            (1, t.second().to_string())
        } else if starts(i, "PM") {
            (2, if t.hour() >= 12 { "PM" } else { "AM" }.into())
        } else if starts(i, "pm") {
            (2, if t.hour() >= 12 { "pm" } else { "am" }.into())
        } else if let Some((len, text)) = zone_token(&layout[i..], t) {
            (len, text)
        } else if let Some((len, text)) = fraction_token(&layout[i..], t) {
            (len, text)
        } else {
            let c = layout[i..].chars().next().unwrap_or(' ');
            (c.len_utf8(), c.to_string())
        };
        out.push_str(&text);
        i += token;
    }
    out
}

fn zone_abbreviation(t: &Zoned) -> String {
    let offset = t.offset().seconds();
    if t.time_zone() == &TimeZone::UTC {
        return "UTC".into();
    }
    let abbreviation = t
        .time_zone()
        .to_offset_info(t.timestamp())
        .abbreviation()
        .to_string();
    if abbreviation.starts_with(['+', '-']) || abbreviation.is_empty() {
        // Go writes an offset where the zone has no abbreviation.
        offset_text(offset, false, false, false)
    } else {
        abbreviation
    }
}

fn offset_text(offset: i32, colon: bool, seconds: bool, hours_only: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let n = offset.unsigned_abs();
    let (h, m, s) = (n / 3600, n % 3600 / 60, n % 60);
    let sep = if colon { ":" } else { "" };
    if hours_only {
        format!("{sign}{h:02}")
    } else if seconds {
        format!("{sign}{h:02}{sep}{m:02}{sep}{s:02}")
    } else {
        format!("{sign}{h:02}{sep}{m:02}")
    }
}

fn zone_token(rest: &str, t: &Zoned) -> Option<(usize, String)> {
    const FORMS: [(&str, bool, bool, bool); 5] = [
        ("070000", false, true, false),
        ("07:00:00", true, true, false),
        ("0700", false, false, false),
        ("07:00", true, false, false),
        ("07", false, false, true),
    ];
    let (z, body) = if let Some(body) = rest.strip_prefix('Z') {
        (true, body)
    } else if let Some(body) = rest.strip_prefix('-') {
        (false, body)
    } else {
        return None;
    };
    let offset = t.offset().seconds();
    FORMS.iter().find_map(|(form, colon, seconds, hours)| {
        body.starts_with(form).then(|| {
            let text = if z && offset == 0 {
                "Z".to_string()
            } else {
                offset_text(offset, *colon, *seconds, *hours)
            };
            (form.len() + 1, text)
        })
    })
}

fn fraction_token(rest: &str, t: &Zoned) -> Option<(usize, String)> {
    let sep = rest.chars().next().filter(|c| *c == '.' || *c == ',')?;
    let digit = rest[1..]
        .chars()
        .next()
        .filter(|c| *c == '0' || *c == '9')?;
    let n = rest[1..].chars().take_while(|c| *c == digit).count();
    // A run followed by another digit is not a fraction (Go's rule).
    if rest[1 + n..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{:09}", t.subsec_nanosecond());
    let digits = &nanos[..n.min(9)];
    let text = if digit == '0' {
        format!("{sep}{digits}")
    } else {
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("{sep}{trimmed}")
        }
    };
    Some((1 + n, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Zoned {
        text.parse::<Timestamp>().unwrap().to_zoned(TimeZone::UTC)
    }

    #[test]
    fn go_layouts_format_as_go_does() {
        let t = at("2024-03-05T07:08:09.120Z");
        assert_eq!(format_layout("2006-01-02", &t), "2024-03-05");
        assert_eq!(
            format_layout("2006-01-02T15:04:05Z07:00", &t),
            "2024-03-05T07:08:09Z"
        );
        assert_eq!(
            format_layout("Mon Jan _2 15:04:05 MST 2006", &t),
            "Tue Mar  5 07:08:09 UTC 2024"
        );
        assert_eq!(format_layout("3:04PM", &t), "7:08AM");
        assert_eq!(
            format_layout("2006-01-02 15:04:05.000", &t),
            "2024-03-05 07:08:09.120"
        );
        assert_eq!(format_layout("15:04:05.999999999", &t), "07:08:09.12");
        assert_eq!(
            format_layout("January 2, 06 -0700", &t),
            "March 5, 24 +0000"
        );
        assert_eq!(
            GoTime(t).to_string(),
            "2024-03-05 07:08:09.12 +0000 UTC",
            "Time.String"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(59), "59s");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(3665), "1h1m5s");
        assert_eq!(go_duration(-90), "-1m30s");
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("-1.5h"), Some(-5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
