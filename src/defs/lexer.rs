//! Lexer: source text → tokens with positions. Owns CUE's automatic comma
//! insertion (a newline after an identifier, literal, `)`, `]`, `}` or `...`
//! ends an element) and string decoding, including `\(…)` interpolation,
//! whose expression is lexed into a nested token list for the parser.

use crate::defs::error::{unsupported, CueError, Files, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Lit(String),
    /// Tokens of an interpolated expression, ending with `Eof`.
    Interp(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(String),
    Float(String),
    Str(Vec<StrPart>),
    /// `'…'`
    Bytes(Vec<u8>),
    Package,
    Import,
    For,
    In,
    If,
    Let,
    /// `_|_`
    Bottom,
    /// `@name(body)`: an attribute (body without the parentheses).
    Attr(String, String),
    /// Punctuation and operators, by spelling.
    P(&'static str),
    Comma,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

const PUNCT: &[&str] = &[
    "...", "==", "!=", "<=", ">=", "&&", "||", "=~", "!~", "{", "}", "[", "]", "(", ")", ":", ",", ".", "&", "|", "*",
    "?", "=", "+", "-", "/", "!", "<", ">",
];

pub struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    file: u32,
    files: &'a Files,
}

pub fn lex(src: &str, file: u32, files: &Files) -> Result<Vec<Token>, CueError> {
    let mut lx = Lexer {
        src: src.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
        file,
        files,
    };
    lx.tokens(false)
}

fn inserts_comma(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Ident(_)
            | Tok::Int(_)
            | Tok::Float(_)
            | Tok::Str(_)
            | Tok::Bytes(_)
            | Tok::Bottom
            | Tok::Attr(..)
            | Tok::P(")" | "]" | "}" | "...")
    )
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file,
            line: self.line,
            col: self.col,
        }
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> CueError {
        self.files.err(pos, msg)
    }

    fn peek(&self, k: usize) -> u8 {
        self.src.get(self.i + k).copied().unwrap_or(0)
    }

    fn bump(&mut self) -> u8 {
        let c = self.peek(0);
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        c
    }

    /// Lexes until end of input, or (inside `\(…)`) until the matching `)`.
    fn tokens(&mut self, interp: bool) -> Result<Vec<Token>, CueError> {
        let mut out: Vec<Token> = Vec::new();
        let mut depth = 0usize;
        loop {
            // whitespace and comments; a newline may insert a comma
            loop {
                let c = self.peek(0);
                if c == b'\n' {
                    if !interp && out.last().is_some_and(|t| inserts_comma(&t.tok)) {
                        out.push(Token {
                            tok: Tok::Comma,
                            pos: self.pos(),
                        });
                    }
                    self.bump();
                } else if c == b' ' || c == b'\t' || c == b'\r' {
                    self.bump();
                } else if c == b'/' && self.peek(1) == b'/' {
                    while self.i < self.src.len() && self.peek(0) != b'\n' {
                        self.bump();
                    }
                } else if c == b'/' && self.peek(1) == b'*' {
                    return Err(self.err(self.pos(), unsupported("a /* */ comment")));
                } else {
                    break;
                }
            }
            let pos = self.pos();
            if self.i >= self.src.len() {
                if interp {
                    return Err(self.err(pos, "unterminated string interpolation"));
                }
                if out.last().is_some_and(|t| inserts_comma(&t.tok)) {
                    out.push(Token { tok: Tok::Comma, pos });
                }
                out.push(Token { tok: Tok::Eof, pos });
                return Ok(out);
            }
            let c = self.peek(0);
            let tok = if self.src[self.i..].starts_with(b"_|_") {
                for _ in 0..3 {
                    self.bump();
                }
                Tok::Bottom
            } else if c == b'#' && self.src[self.i..].iter().find(|&&b| b != b'#') == Some(&b'"') {
                // raw string: #"…"#, ##"…"## …
                let hashes = self.src[self.i..].iter().take_while(|&&b| b == b'#').count();
                for _ in 0..hashes {
                    self.bump();
                }
                self.string(pos, hashes, b'"')?
            } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'#' {
                self.ident()
            } else if c.is_ascii_digit() || (c == b'.' && self.peek(1).is_ascii_digit()) {
                self.number(pos)?
            } else if c == b'"' {
                self.string(pos, 0, b'"')?
            } else if c == b'\'' {
                self.string(pos, 0, b'\'')?
            } else if c == b'@' {
                self.attribute(pos)?
            } else if c == b'`' {
                return Err(self.err(pos, "illegal character '`'"));
            } else {
                let rest = &self.src[self.i..];
                let Some(p) = PUNCT.iter().find(|p| rest.starts_with(p.as_bytes())) else {
                    let ch = String::from_utf8_lossy(&rest[..rest.len().min(4)])
                        .chars()
                        .next()
                        .unwrap_or('?');
                    return Err(self.err(pos, format!("illegal character {ch:?}")));
                };
                for _ in 0..p.len() {
                    self.bump();
                }
                if interp {
                    if *p == "(" {
                        depth += 1;
                    } else if *p == ")" {
                        if depth == 0 {
                            out.push(Token { tok: Tok::Eof, pos });
                            return Ok(out);
                        }
                        depth -= 1;
                    }
                }
                if *p == "," {
                    Tok::Comma
                } else {
                    Tok::P(p)
                }
            };
            out.push(Token { tok, pos });
        }
    }

    /// `@name(…)`, parentheses balanced, strings skipped whole.
    fn attribute(&mut self, pos: Pos) -> Result<Tok, CueError> {
        self.bump();
        let start = self.i;
        while self.peek(0).is_ascii_alphanumeric() || self.peek(0) == b'_' {
            self.bump();
        }
        let name = String::from_utf8_lossy(&self.src[start..self.i]).into_owned();
        if name.is_empty() || self.peek(0) != b'(' {
            return Err(self.err(pos, "malformed attribute: expected @name(…)"));
        }
        self.bump();
        let body_start = self.i;
        let mut depth = 1usize;
        loop {
            match self.peek(0) {
                0 if self.i >= self.src.len() => return Err(self.err(pos, "attribute not terminated")),
                b'\n' => return Err(self.err(pos, "attribute not terminated")),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'"' => {
                    self.bump();
                    while !matches!(self.peek(0), b'"' | b'\n') && self.i < self.src.len() {
                        if self.peek(0) == b'\\' {
                            self.bump();
                        }
                        self.bump();
                    }
                }
                _ => {}
            }
            self.bump();
        }
        let body = String::from_utf8_lossy(&self.src[body_start..self.i]).into_owned();
        self.bump();
        Ok(Tok::Attr(name, body))
    }

    fn ident(&mut self) -> Tok {
        let start = self.i;
        // `_#x`: a hidden definition
        if self.peek(0) == b'_' && self.peek(1) == b'#' {
            self.bump();
        }
        self.bump();
        while self.peek(0).is_ascii_alphanumeric() || self.peek(0) == b'_' || self.peek(0) == b'$' {
            self.bump();
        }
        let s = String::from_utf8_lossy(&self.src[start..self.i]).into_owned();
        match s.as_str() {
            "package" => Tok::Package,
            "import" => Tok::Import,
            "for" => Tok::For,
            "in" => Tok::In,
            "if" => Tok::If,
            "let" => Tok::Let,
            _ => Tok::Ident(s),
        }
    }

    fn number(&mut self, pos: Pos) -> Result<Tok, CueError> {
        let start = self.i;
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
            self.bump();
            self.bump();
            while self.peek(0).is_ascii_alphanumeric() || self.peek(0) == b'_' {
                self.bump();
            }
            let s = String::from_utf8_lossy(&self.src[start..self.i]).replace('_', "");
            return Ok(Tok::Int(s));
        }
        let mut float = false;
        while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
            self.bump();
        }
        if self.peek(0) == b'.' && self.peek(1) != b'.' {
            float = true;
            self.bump();
            while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
                self.bump();
            }
        }
        if matches!(self.peek(0), b'e' | b'E') {
            float = true;
            self.bump();
            if matches!(self.peek(0), b'+' | b'-') {
                self.bump();
            }
            if !self.peek(0).is_ascii_digit() {
                return Err(self.err(pos, "malformed number: exponent has no digits"));
            }
            while self.peek(0).is_ascii_digit() {
                self.bump();
            }
        }
        if self.peek(0).is_ascii_alphabetic() {
            // 1K, 1Mi … multipliers, or garbage like 12abc
            return Err(self.err(pos, unsupported("a number with a multiplier suffix")));
        }
        let s = String::from_utf8_lossy(&self.src[start..self.i]).replace('_', "");
        Ok(if float { Tok::Float(s) } else { Tok::Int(s) })
    }

    /// A string (`quote` `"`) or bytes (`'`) literal after `hashes` `#`s:
    /// escapes need as many `#`s after the backslash, and the literal ends
    /// at the quote followed by as many `#`s.
    fn string(&mut self, pos: Pos, hashes: usize, quote: u8) -> Result<Tok, CueError> {
        let triple = [quote; 3];
        let multi = self.src[self.i..].starts_with(&triple);
        let bytes = quote == b'\'';
        if multi && bytes {
            return Err(self.err(pos, unsupported("a multi-line bytes literal (''')")));
        }
        let closes = |lx: &Self, at: usize| lx.src[at..].iter().take(hashes).filter(|&&b| b == b'#').count() == hashes;
        if multi {
            for _ in 0..3 {
                self.bump();
            }
            // the opening """ must be followed by a newline
            while matches!(self.peek(0), b' ' | b'\t' | b'\r') {
                self.bump();
            }
            if self.peek(0) != b'\n' {
                return Err(self.err(pos, "a multi-line string must start with a newline after \"\"\""));
            }
            self.bump();
        } else {
            self.bump();
        }
        let mut parts: Vec<StrPart> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        loop {
            if self.i >= self.src.len() {
                return Err(self.err(pos, "string literal not terminated"));
            }
            let c = self.peek(0);
            if multi && self.src[self.i..].starts_with(&triple) && closes(self, self.i + 3) {
                for _ in 0..3 + hashes {
                    self.bump();
                }
                break;
            }
            if !multi && c == quote && closes(self, self.i + 1) {
                for _ in 0..1 + hashes {
                    self.bump();
                }
                break;
            }
            if !multi && c == b'\n' {
                return Err(self.err(pos, "string literal not terminated"));
            }
            if c == b'\\' && closes(self, self.i + 1) {
                let epos = self.pos();
                for _ in 0..1 + hashes {
                    self.bump();
                }
                let e = self.bump();
                match e {
                    b'n' => cur.push(b'\n'),
                    b't' => cur.push(b'\t'),
                    b'r' => cur.push(b'\r'),
                    b'b' => cur.push(8),
                    b'f' => cur.push(12),
                    b'v' => cur.push(11),
                    b'a' => cur.push(7),
                    b'\\' => cur.push(b'\\'),
                    b'x' if bytes => {
                        let hex = [self.bump(), self.bump()];
                        let v = std::str::from_utf8(&hex)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        let Some(v) = v else {
                            return Err(self.err(epos, "invalid hexadecimal escape"));
                        };
                        cur.push(v);
                    }
                    b'0'..=b'7' if bytes => {
                        let oct = [e, self.bump(), self.bump()];
                        let v = std::str::from_utf8(&oct)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 8).ok());
                        let Some(v) = v else {
                            return Err(self.err(epos, "invalid octal escape"));
                        };
                        cur.push(v);
                    }
                    b'"' => cur.push(b'"'),
                    b'\'' => cur.push(b'\''),
                    b'/' => cur.push(b'/'),
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let mut v: u32 = 0;
                        for _ in 0..n {
                            let d = (self.bump() as char).to_digit(16);
                            let Some(d) = d else {
                                return Err(self.err(epos, "invalid unicode escape"));
                            };
                            v = v * 16 + d;
                        }
                        let Some(ch) = char::from_u32(v) else {
                            return Err(self.err(epos, "invalid unicode code point in escape"));
                        };
                        let mut buf = [0u8; 4];
                        cur.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    b'(' if bytes => return Err(self.err(epos, unsupported("interpolation in a bytes literal"))),
                    b'(' => {
                        if !cur.is_empty() {
                            parts.push(StrPart::Lit(String::from_utf8_lossy(&cur).into_owned()));
                            cur.clear();
                        }
                        let toks = self.tokens(true)?;
                        parts.push(StrPart::Interp(toks));
                    }
                    _ => return Err(self.err(epos, "unknown escape sequence")),
                }
                continue;
            }
            cur.push(self.bump());
        }
        if bytes {
            return Ok(Tok::Bytes(cur));
        }
        if !cur.is_empty() || parts.is_empty() {
            parts.push(StrPart::Lit(String::from_utf8_lossy(&cur).into_owned()));
        }
        if multi {
            parts = self.strip_indent(parts, pos)?;
        }
        Ok(Tok::Str(parts))
    }

    /// Multi-line strings: the whitespace before the closing `"""` is removed
    /// from every line, and the final newline is dropped.
    fn strip_indent(&self, mut parts: Vec<StrPart>, pos: Pos) -> Result<Vec<StrPart>, CueError> {
        let indent = match parts.last() {
            Some(StrPart::Lit(s)) => match s.rfind('\n') {
                Some(i) if s[i + 1..].chars().all(|c| c == ' ' || c == '\t') => s[i + 1..].to_string(),
                None if s.chars().all(|c| c == ' ' || c == '\t') && parts.len() == 1 => s.clone(),
                _ => return Err(self.err(pos, "closing \"\"\" of a multi-line string must be on its own line")),
            },
            _ => return Err(self.err(pos, "closing \"\"\" of a multi-line string must be on its own line")),
        };
        // drop the last line (newline + indentation)
        if let Some(StrPart::Lit(s)) = parts.last_mut() {
            let cut = s.rfind('\n').unwrap_or(0);
            s.truncate(cut);
        }
        let mut at_line_start = true;
        for p in parts.iter_mut() {
            if let StrPart::Lit(s) = p {
                let mut out = String::new();
                for (k, line) in s.split('\n').enumerate() {
                    if k > 0 {
                        out.push('\n');
                        at_line_start = true;
                    }
                    if at_line_start && !line.is_empty() {
                        match line.strip_prefix(indent.as_str()) {
                            Some(rest) => out.push_str(rest),
                            None => {
                                return Err(self.err(pos, "invalid whitespace in multi-line string: lines must start with the closing \"\"\"'s indentation"))
                            }
                        }
                    } else {
                        out.push_str(line);
                    }
                    at_line_start = false;
                }
                *s = out;
            } else {
                at_line_start = false;
            }
        }
        parts.retain(|p| !matches!(p, StrPart::Lit(s) if s.is_empty()));
        if parts.is_empty() {
            parts.push(StrPart::Lit(String::new()));
        }
        Ok(parts)
    }
}
