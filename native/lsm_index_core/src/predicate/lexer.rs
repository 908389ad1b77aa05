//! Tokens of a WHERE clause, each with the byte offset it starts at (for error messages).

use crate::error::{Error, Result};

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// An unquoted identifier or keyword, folded to lower case (as Postgres does).
    Word(String),
    /// A `"double quoted"` identifier, exactly as written (`""` is one `"`).
    Quoted(String),
    /// An integer literal, as written (sign separate).
    Integer(String),
    /// A decimal literal (`1.5`, `.5`, `1e3`), as written.
    Decimal(String),
    /// A `'string'` literal (`''` is one `'`).
    Str(String),
    /// `=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`.
    Op(&'static str),
    /// `-` (a sign of a numeric literal).
    Minus,
    /// `+` (a sign of a numeric literal).
    Plus,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `::`
    Cast,
    /// An arithmetic, text or array operator: `*`, `/`, `%`, `||`, `@>`, `<@`, `&&`.
    Arith(&'static str),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A parameter `$n` (n >= 1).
    Param(u32),
    /// `.` between the parts of a qualified name (`schema.table`, `t.col`).
    Dot,
}

/// Splits `sql` into tokens with their byte offsets.
pub fn tokens(sql: &str) -> Result<Vec<(usize, Token)>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let token = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => one(&mut i, Token::LParen),
            b')' => one(&mut i, Token::RParen),
            b',' => one(&mut i, Token::Comma),
            b':' if bytes.get(i + 1) == Some(&b':') => {
                i += 2;
                Token::Cast
            }
            c if is_op_char(c) => operator(sql, &mut i)?,
            b'e' | b'E' if bytes.get(i + 1) == Some(&b'\'') => {
                i += 1;
                Token::Str(escape_string(sql, &mut i)?)
            }
            b'\'' => Token::Str(quoted(sql, &mut i, b'\'', "string")?),
            b'"' => {
                let name = quoted(sql, &mut i, b'"', "quoted identifier")?;
                if name.is_empty() {
                    return Err(error(start, "an empty quoted identifier"));
                }
                Token::Quoted(name)
            }
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => one(&mut i, Token::Dot),
            b'0'..=b'9' | b'.' => number(bytes, &mut i)?,
            b'$' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                match sql[start + 1..i].parse::<u32>() {
                    Ok(n) if n >= 1 => Token::Param(n),
                    _ => return Err(error(start, "a parameter $1, $2, ...")),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Token::Word(sql[start..i].to_ascii_lowercase())
            }
            b'[' => one(&mut i, Token::LBracket),
            b']' => one(&mut i, Token::RBracket),
            _ => {
                let ch = sql[i..].chars().next().unwrap_or('?');
                return Err(error(start, &format!("unexpected character {ch:?}")));
            }
        };
        out.push((start, token));
    }
    Ok(out)
}

fn one(i: &mut usize, t: Token) -> Token {
    *i += 1;
    t
}

/// The characters PostgreSQL builds operators from.
fn is_op_char(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// An operator token, cut as PostgreSQL's lexer cuts it: the longest run of operator
/// characters (up to a comment start), less any trailing `+`/`-` unless the run also holds one
/// of ``~ ! @ # % ^ & | ` ?`` (so `<>-1` is `<>` then `-1`, while `!=-1` is the operator
/// `!=-`). Only the comparison operators, the signs, `* / % ||` and the array operators `@> <@
/// &&` exist here; any other is
/// refused, as PostgreSQL refuses an operator it does not know.
fn operator(sql: &str, i: &mut usize) -> Result<Token> {
    let bytes = sql.as_bytes();
    let start = *i;
    let mut end = start;
    while end < bytes.len() && is_op_char(bytes[end]) {
        if end > start && matches!(&bytes[end - 1..=end], b"--" | b"/*") {
            end -= 1;
            break;
        }
        end += 1;
    }
    if end == start {
        // the run starts a comment
        return Err(error(start, "no comments in a WHERE clause"));
    }
    let run = &bytes[start..end];
    let keeps_sign = run.iter().any(|c| {
        matches!(
            c,
            b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|' | b'`' | b'?'
        )
    });
    if !keeps_sign {
        while end > start + 1 && matches!(bytes[end - 1], b'+' | b'-') {
            end -= 1;
        }
    }
    *i = end;
    Ok(match &sql[start..end] {
        "-" => Token::Minus,
        "+" => Token::Plus,
        "=" => Token::Op("="),
        "<>" | "!=" => Token::Op("<>"),
        "<" => Token::Op("<"),
        "<=" => Token::Op("<="),
        ">" => Token::Op(">"),
        ">=" => Token::Op(">="),
        "*" => Token::Arith("*"),
        "/" => Token::Arith("/"),
        "%" => Token::Arith("%"),
        "||" => Token::Arith("||"),
        "@>" => Token::Arith("@>"),
        "<@" => Token::Arith("<@"),
        "&&" => Token::Arith("&&"),
        op => return Err(error(start, &format!("a known operator, found {op:?}"))),
    })
}

/// The body of a literal quoted with `q` starting at `*i`; a doubled `q` is one `q`.
fn quoted(sql: &str, i: &mut usize, q: u8, what: &str) -> Result<String> {
    let bytes = sql.as_bytes();
    let start = *i;
    let mut out = String::new();
    let mut j = *i + 1;
    let mut run = j;
    loop {
        match bytes.get(j) {
            None => return Err(error(start, &format!("an unterminated {what}"))),
            Some(&b) if b == q => {
                out.push_str(&sql[run..j]);
                if bytes.get(j + 1) == Some(&q) {
                    out.push(q as char);
                    j += 2;
                    run = j;
                } else {
                    *i = j + 1;
                    return Ok(out);
                }
            }
            Some(_) => j += 1,
        }
    }
}

/// The body of an `E'…'` escape string starting at its quote `*i`, with PostgreSQL's
/// backslash escapes: `\b \f \n \r \t`, octal `\o`..`\ooo`, hex `\xh`..`\xhh`, `\uXXXX`,
/// `\UXXXXXXXX`, and `\c` for any other character `c`; `''` is one `'`. The bytes must make
/// UTF-8 without NUL (the database's encoding), as PostgreSQL requires.
fn escape_string(sql: &str, i: &mut usize) -> Result<String> {
    let bytes = sql.as_bytes();
    let start = *i - 1;
    let mut out: Vec<u8> = Vec::new();
    let mut j = *i + 1;
    let digits = |j: &mut usize, radix: u32, max: usize| -> u32 {
        let mut v = 0;
        let mut n = 0;
        while n < max {
            match bytes.get(*j).and_then(|&b| (b as char).to_digit(radix)) {
                Some(d) => {
                    v = v * radix + d;
                    *j += 1;
                    n += 1;
                }
                None => break,
            }
        }
        v
    };
    loop {
        match bytes.get(j) {
            None => return Err(error(start, "an unterminated string")),
            Some(b'\'') if bytes.get(j + 1) == Some(&b'\'') => {
                out.push(b'\'');
                j += 2;
            }
            Some(b'\'') => break,
            Some(b'\\') => {
                let at = j;
                j += 1;
                let Some(&e) = bytes.get(j) else {
                    return Err(error(start, "an unterminated string"));
                };
                match e {
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let v = digits(&mut j, 8, 3);
                        out.push(v as u8);
                        continue;
                    }
                    b'x' if bytes.get(j + 1).is_some_and(u8::is_ascii_hexdigit) => {
                        j += 1;
                        out.push(digits(&mut j, 16, 2) as u8);
                        continue;
                    }
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        j += 1;
                        let from = j;
                        let v = digits(&mut j, 16, n);
                        let c = (j - from == n).then(|| char::from_u32(v)).flatten();
                        let Some(c) = c.filter(|&c| c != '\0') else {
                            return Err(error(at, "a valid Unicode escape"));
                        };
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        continue;
                    }
                    _ => {
                        // any other character stands for itself (a whole UTF-8 character)
                        let c = sql[j..].chars().next().unwrap_or('\\');
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        j += c.len_utf8();
                        continue;
                    }
                }
                j += 1;
            }
            Some(&b) => {
                out.push(b);
                j += 1;
            }
        }
    }
    *i = j + 1;
    if out.contains(&0) {
        return Err(error(start, "a string without a NUL character"));
    }
    String::from_utf8(out).map_err(|_| error(start, "a string that is valid UTF-8"))
}

/// An integer or decimal literal: digits, an optional fraction, an optional exponent.
fn number(bytes: &[u8], i: &mut usize) -> Result<Token> {
    let start = *i;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    let int = digits(i);
    let mut decimal = false;
    if bytes.get(*i) == Some(&b'.') {
        *i += 1;
        decimal = true;
        if !digits(i) && !int {
            return Err(error(start, "a number (digits around the '.')"));
        }
    }
    if matches!(bytes.get(*i), Some(b'e' | b'E')) {
        let save = *i;
        *i += 1;
        if matches!(bytes.get(*i), Some(b'+' | b'-')) {
            *i += 1;
        }
        if digits(i) {
            decimal = true;
        } else {
            *i = save;
        }
    }
    if bytes
        .get(*i)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return Err(error(*i, "an operator or space after a number"));
    }
    let text = String::from_utf8_lossy(&bytes[start..*i]).into_owned();
    Ok(if decimal {
        Token::Decimal(text)
    } else {
        Token::Integer(text)
    })
}

/// A predicate error at byte `position`.
pub fn error(position: usize, expected: &str) -> Error {
    Error::InvalidPredicate {
        position,
        reason: expected.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_positions() {
        let t = tokens(r#"a = 'it''s' AND "B c" <> -1.5e3::float8"#).unwrap();
        let kinds: Vec<&Token> = t.iter().map(|(_, t)| t).collect();
        assert_eq!(
            kinds,
            vec![
                &Token::Word("a".into()),
                &Token::Op("="),
                &Token::Str("it's".into()),
                &Token::Word("and".into()),
                &Token::Quoted("B c".into()),
                &Token::Op("<>"),
                &Token::Minus,
                &Token::Decimal("1.5e3".into()),
                &Token::Cast,
                &Token::Word("float8".into()),
            ]
        );
        assert_eq!(t[4].0, 16);
    }

    #[test]
    fn dots_qualify_names_and_start_fractions() {
        let t = tokens("s.t.\"c\" = .5").unwrap();
        let kinds: Vec<&Token> = t.iter().map(|(_, t)| t).collect();
        assert_eq!(
            kinds,
            vec![
                &Token::Word("s".into()),
                &Token::Dot,
                &Token::Word("t".into()),
                &Token::Dot,
                &Token::Quoted("c".into()),
                &Token::Op("="),
                &Token::Decimal(".5".into()),
            ]
        );
        assert_eq!(t[3].0, 3);
    }

    #[test]
    fn bad_input_names_the_position() {
        for (sql, at) in [
            ("a = 'open", 4),
            ("a = #", 4),
            ("a = 12abc", 6),
            ("\"\"", 0),
        ] {
            match tokens(sql) {
                Err(Error::InvalidPredicate { position, .. }) => assert_eq!(position, at, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }
}
