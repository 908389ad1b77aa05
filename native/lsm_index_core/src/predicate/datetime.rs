//! `date`, `time`, `timestamp` and `timestamptz` values: read from PostgreSQL's ISO text
//! (what logical replication sends under the default `DateStyle`, and ISO 8601 literals),
//! held as integers so they compare as PostgreSQL compares them.
//!
//! ```text
//! date         days since 2000-01-01        (i32; i32::MIN/MAX = -infinity/infinity)
//! time         microseconds since 00:00     (0 ..= 24:00:00)
//! timestamp    microseconds since 2000-01-01 00:00           (i64; MIN/MAX = ∓infinity)
//! timestamptz  microseconds since 2000-01-01 00:00 UTC       (an instant; same encoding)
//! ```
//!
//! Text forms read: `YYYY-MM-DD`, then optionally a time (`T` or spaces, `HH:MM[:SS[.frac]]`),
//! an offset (`Z`, `UTC`, `±HH[:MM[:SS]]`, `±HHMM`) and ` BC`/` AD`; `infinity`,
//! `-infinity`, `epoch`. A `timestamptz` without an offset is read in UTC (the sessions this
//! library mirrors run with `TimeZone = UTC`); `date`, `time` and `timestamp` ignore an
//! offset, as PostgreSQL does. Relative words (`now`, `today`) are refused: a shape's meaning
//! must not depend on when it was added.

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i64 = 10_957;
/// The first date PostgreSQL holds, 4714-11-24 BC (Julian day 0), in days since 2000-01-01.
const MIN_DATE: i64 = -2_451_545;
/// The day after the last date PostgreSQL holds (5874897-12-31).
const END_DATE: i64 = 2_145_031_949;
/// The day after the last timestamp's day (294276-12-31).
const END_TIMESTAMP_DATE: i64 = 106_751_983;

/// Which of the four types a text is read as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`: an instant.
    Timestamptz,
}

/// The value of `text` as `kind`: days for a date, microseconds otherwise (see the module
/// doc); `None` when it is not one, or is out of the type's range.
pub fn parse(kind: Kind, text: &str) -> Option<i64> {
    let t = text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let lower = t.to_ascii_lowercase();
    let (min, max) = match kind {
        Kind::Date => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    match (lower.as_str(), kind) {
        ("infinity" | "+infinity", Kind::Date | Kind::Timestamp | Kind::Timestamptz) => {
            return Some(max)
        }
        ("-infinity", Kind::Date | Kind::Timestamp | Kind::Timestamptz) => return Some(min),
        ("epoch", Kind::Date) => return Some(-PG_EPOCH_DAYS),
        ("epoch", Kind::Timestamp | Kind::Timestamptz) => return Some(-PG_EPOCH_DAYS * DAY_US),
        ("allballs", Kind::Time) => return Some(0),
        _ => {}
    }
    if kind == Kind::Time {
        let mut s = Scanner::new(&lower);
        let us = s.time()?;
        s.offset()?;
        return s.at_end().then_some(us);
    }
    let mut s = Scanner::new(&lower);
    let (year, month, day) = s.date()?;
    let time = if s.time_separator() { s.time()? } else { 0 };
    let offset = s.offset()?;
    let bc = s.era()?;
    if !s.at_end() {
        return None;
    }
    // astronomical year numbering: 1 BC is year 0
    let year = if bc { 1 - year } else { year };
    let days = days_from_civil(year, month, day)? - PG_EPOCH_DAYS;
    match kind {
        Kind::Date => (MIN_DATE..END_DATE).contains(&days).then_some(days),
        _ => {
            let local = days * DAY_US + time;
            let us = match kind {
                Kind::Timestamptz => local - offset.unwrap_or(0) * 1_000_000,
                _ => local,
            };
            (MIN_DATE * DAY_US..END_TIMESTAMP_DATE * DAY_US)
                .contains(&us)
                .then_some(us)
        }
    }
}

/// A date (days since 2000-01-01) at midnight, in microseconds, if within timestamp range.
pub fn date_to_timestamp(days: i32) -> Option<i64> {
    match days {
        i32::MIN => Some(i64::MIN),
        i32::MAX => Some(i64::MAX),
        d => {
            let d = i64::from(d);
            (d < END_TIMESTAMP_DATE).then(|| d * DAY_US)
        }
    }
}

/// PostgreSQL's ISO text of a value of `kind` (timestamptz in UTC, `+00`): what [`parse`]
/// reads back.
pub fn text(kind: Kind, v: i64) -> String {
    let infinite = match kind {
        Kind::Date => v == i64::from(i32::MAX) || v == i64::from(i32::MIN),
        Kind::Time => false,
        _ => v == i64::MAX || v == i64::MIN,
    };
    if infinite {
        return if v > 0 { "infinity" } else { "-infinity" }.into();
    }
    if kind == Kind::Time {
        return clock(v);
    }
    let (days, us) = match kind {
        Kind::Date => (v, 0),
        _ => (v.div_euclid(DAY_US), v.rem_euclid(DAY_US)),
    };
    let (y, m, d) = civil_from_days(days + PG_EPOCH_DAYS);
    let (year, bc) = if y <= 0 { (1 - y, " BC") } else { (y, "") };
    let date = format!("{year:04}-{m:02}-{d:02}");
    match kind {
        Kind::Date => format!("{date}{bc}"),
        Kind::Timestamptz => format!("{date} {}+00{bc}", clock(us)),
        _ => format!("{date} {}{bc}", clock(us)),
    }
}

/// `HH:MM:SS[.ffffff]` (fraction without trailing zeros) of microseconds since midnight.
fn clock(us: i64) -> String {
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    let base = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        base
    } else {
        format!("{base}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year), if valid.
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's days_from_civil
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The proleptic Gregorian date (astronomical year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A cursor over lower-cased date/time text.
struct Scanner<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Scanner<'a> {
        Scanner {
            s: s.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let yes = self.peek() == Some(b);
        self.at += usize::from(yes);
        yes
    }

    fn at_end(&self) -> bool {
        self.at == self.s.len()
    }

    fn spaces(&mut self) -> bool {
        let start = self.at;
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
        self.at > start
    }

    /// 1 to `max` decimal digits.
    fn number(&mut self, max: usize) -> Option<i64> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) && self.at - start < max {
            self.at += 1;
        }
        if self.at == start || self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    /// `Y-M-D` (a year of 1 to 9 digits, not zero).
    fn date(&mut self) -> Option<(i64, u32, u32)> {
        let year = self.number(9).filter(|&y| y > 0)?;
        self.eat(b'-').then_some(())?;
        let month = self.number(2)?;
        self.eat(b'-').then_some(())?;
        let day = self.number(2)?;
        Some((year, u32::try_from(month).ok()?, u32::try_from(day).ok()?))
    }

    /// Whether a time follows (`T`, or spaces before a digit).
    fn time_separator(&mut self) -> bool {
        if self.eat(b't') {
            return true;
        }
        let start = self.at;
        if self.spaces() && self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return true;
        }
        self.at = start;
        false
    }

    /// `HH:MM[:SS[.frac]]` in microseconds; 24:00:00 is the end of the day.
    fn time(&mut self) -> Option<i64> {
        let hour = self.number(2)?;
        self.eat(b':').then_some(())?;
        let minute = self.number(2)?;
        let (mut second, mut micros) = (0, 0);
        if self.eat(b':') {
            second = self.number(2)?;
            if self.peek() == Some(b'.') {
                let start = self.at;
                self.at += 1;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.at += 1;
                }
                // as PostgreSQL: strtod of the fraction, times 1e6, rounded half to even
                let frac: f64 = format!("0{}", std::str::from_utf8(&self.s[start..self.at]).ok()?)
                    .parse()
                    .ok()?;
                micros = (frac * 1e6).round_ties_even() as i64;
            }
        }
        if minute > 59 || second > 59 || hour > 24 {
            return None;
        }
        let us = ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros;
        (us <= DAY_US).then_some(us)
    }

    /// An optional UTC offset, in seconds east of Greenwich: `Some(None)` when absent.
    fn offset(&mut self) -> Option<Option<i64>> {
        let start = self.at;
        self.spaces();
        if self.eat(b'z') {
            return Some(Some(0));
        }
        for zone in [&b"utc"[..], b"gmt"] {
            if self.s[self.at..].starts_with(zone) {
                self.at += zone.len();
                return Some(Some(0));
            }
        }
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => {
                self.at = start;
                return Some(None);
            }
        };
        self.at += 1;
        let digits_start = self.at;
        let first = self.number(4)?;
        let (hours, mut minutes) = if self.at - digits_start > 2 {
            (first / 100, first % 100)
        } else {
            (first, 0)
        };
        let mut seconds = 0;
        if self.eat(b':') {
            minutes = self.number(2)?;
            if self.eat(b':') {
                seconds = self.number(2)?;
            }
        }
        if hours > 15 || minutes > 59 || seconds > 59 {
            return None;
        }
        Some(Some(sign * (hours * 3600 + minutes * 60 + seconds)))
    }

    /// An optional ` BC` / ` AD`: whether BC.
    fn era(&mut self) -> Option<bool> {
        let start = self.at;
        self.spaces();
        if self.s[self.at..].starts_with(b"bc") {
            self.at += 2;
            return Some(true);
        }
        if self.s[self.at..].starts_with(b"ad") {
            self.at += 2;
            return Some(false);
        }
        self.at = start;
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_and_print_as_postgres() {
        assert_eq!(parse(Kind::Date, "2000-01-01"), Some(0));
        assert_eq!(
            parse(Kind::Date, " 2024-1-1 "),
            parse(Kind::Date, "2024-01-01")
        );
        assert_eq!(parse(Kind::Date, "1970-01-01"), parse(Kind::Date, "epoch"));
        assert_eq!(parse(Kind::Date, "Infinity"), Some(i64::from(i32::MAX)));
        assert_eq!(parse(Kind::Date, "2024-02-30"), None);
        assert_eq!(parse(Kind::Date, "0000-01-01"), None, "no year 0");
        assert_eq!(parse(Kind::Date, "today"), None);
        // the range: 4714-11-24 BC to 5874897-12-31
        assert_eq!(parse(Kind::Date, "4714-11-24 BC"), Some(MIN_DATE));
        assert_eq!(parse(Kind::Date, "4714-11-23 BC"), None);
        assert!(parse(Kind::Date, "5874897-12-31").is_some());
        assert_eq!(parse(Kind::Date, "5874898-01-01"), None);
        // 1 BC is a leap year (astronomical year 0)
        assert!(parse(Kind::Date, "0001-02-29 BC").is_some());
        for t in [
            "2024-02-29",
            "0044-03-15 BC",
            "10000-01-01",
            "infinity",
            "-infinity",
        ] {
            let d = parse(Kind::Date, t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(text(Kind::Date, d), t);
        }
        // a time part is read and dropped
        assert_eq!(
            parse(Kind::Date, "2024-01-01 10:00"),
            parse(Kind::Date, "2024-01-01")
        );
    }

    #[test]
    fn timestamps_and_instants() {
        let ts = |t| parse(Kind::Timestamp, t);
        let tz = |t| parse(Kind::Timestamptz, t);
        assert_eq!(ts("2000-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(ts("2000-01-01T00:00:00.5"), Some(500_000));
        assert_eq!(ts("2000-01-01"), Some(0));
        // timestamp ignores an offset; timestamptz compares instants
        assert_eq!(ts("2024-01-01 10:00+05:30"), ts("2024-01-01 10:00"));
        assert_eq!(
            tz("2024-01-01 10:00:00+05:30"),
            tz("2024-01-01 04:30:00+00")
        );
        assert_eq!(tz("2024-01-01 10:00:00 +05:30"), tz("2024-01-01 04:30Z"));
        assert_eq!(tz("2024-01-01 10:00-0800"), tz("2024-01-01 18:00"));
        assert_eq!(
            tz("1900-01-01 00:00:00+00:09:21"),
            tz("1899-12-31 23:50:39+00")
        );
        assert_eq!(ts("2000-01-01 24:00:00"), ts("2000-01-02"));
        assert_eq!(ts("2000-01-01 24:00:01"), None);
        assert_eq!(ts("2000-01-01 10:60"), None);
        assert_eq!(ts("2000-01-01 10:00 +16"), None);
        assert_eq!(ts("294277-01-01"), None);
        assert!(ts("294276-12-31 23:59:59.999999").is_some());
        // PostgreSQL rounds a fraction to microseconds: rint(frac * 1e6)
        assert_eq!(ts("2000-01-01 00:00:00.1234565"), Some(123_456));
        assert_eq!(ts("2000-01-01 00:00:00.1234575"), Some(123_458));
        for t in [
            "2024-01-01 10:00:00",
            "2024-01-01 10:00:00.5",
            "0044-03-15 12:00:00 BC",
            "infinity",
        ] {
            assert_eq!(
                text(Kind::Timestamp, ts(t).unwrap_or_else(|| panic!("{t}"))),
                t
            );
        }
        let v = tz("0044-03-15 12:00:00.000001+00 BC").unwrap_or_default();
        assert_eq!(
            text(Kind::Timestamptz, v),
            "0044-03-15 12:00:00.000001+00 BC"
        );
    }

    #[test]
    fn times() {
        let t = |s| parse(Kind::Time, s);
        assert_eq!(t("00:00"), Some(0));
        assert_eq!(t("24:00:00"), Some(DAY_US));
        assert_eq!(t("10:00:00.25+05"), Some(36_000_250_000));
        assert_eq!(t("allballs"), Some(0));
        assert_eq!(t("10"), None);
        assert_eq!(t("25:00"), None);
        assert_eq!(text(Kind::Time, DAY_US), "24:00:00");
        assert_eq!(text(Kind::Time, 36_000_250_000), "10:00:00.25");
    }
}
