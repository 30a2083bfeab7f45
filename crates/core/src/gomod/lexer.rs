//! The go.mod lexer (`golang.org/x/mod/modfile` read.go): tokens, newlines and comments, with
//! modfile's positions and its syntax error messages.
//!
//! Tokens are raw bytes, as in Go, where strings need not be UTF-8: error messages quote them
//! byte for byte. Runes are decoded like Go's `utf8.DecodeRune` (an invalid byte is U+FFFD), and
//! texts become Rust strings with [`go_lossy`], one U+FFFD per invalid byte, which is also how
//! Go's own JSON encoding shows them.

use super::quote::quote_rune;
use super::syntax::Comment;
use super::unicode::is_ident_rune;

/// A position in the go.mod text, as modfile counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    /// 1-based line number.
    pub(crate) line: usize,
    /// 1-based rune offset within the line.
    pub(crate) line_rune: usize,
    /// Byte offset in the file.
    pub(crate) byte: usize,
}

impl Position {
    /// The position after the one-byte token `)` or `(` starting here.
    pub(super) fn after_paren(self) -> Position {
        Position {
            line: self.line,
            line_rune: self.line_rune + 1,
            byte: self.byte + 1,
        }
    }
}

/// A syntax error: where the lexer or parser stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) pos: Position,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Eof,
    EolComment,
    Ident,
    String,
    Comment,
    Newline,
    /// One of `( ) [ ] { } ,`.
    Punct(u8),
}

impl Kind {
    pub(super) fn is_eol(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Newline)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) pos: Position,
    pub(super) end: Position,
    pub(super) text: Vec<u8>,
}

/// Decodes the rune at the start of `b` like Go's `utf8.DecodeRune`: an invalid or truncated
/// sequence is U+FFFD of width 1 (width 0 for empty input).
pub(crate) fn decode_rune(b: &[u8]) -> (char, usize) {
    let prefix = &b[..b.len().min(4)];
    let valid = match std::str::from_utf8(prefix) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default(),
    };
    match valid.chars().next() {
        Some(c) => (c, c.len_utf8()),
        None => ('\u{FFFD}', b.len().min(1)),
    }
}

pub(super) struct Lexer<'a> {
    complete: &'a [u8],
    /// Byte offset of the unread input.
    at: usize,
    pos: Position,
    token_start: usize,
    token: Token,
    /// Suffix (end-of-line) comments, in file order, for later attachment.
    pub(super) suffix_comments: Vec<Comment>,
}

pub(super) type Result<T> = std::result::Result<T, SyntaxError>;

impl<'a> Lexer<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        let start = Position {
            line: 1,
            line_rune: 1,
            byte: 0,
        };
        Lexer {
            complete: data,
            at: 0,
            pos: start,
            token_start: 0,
            token: Token {
                kind: Kind::Eof,
                pos: start,
                end: start,
                text: Vec::new(),
            },
            suffix_comments: Vec::new(),
        }
    }

    pub(super) fn error<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(SyntaxError {
            pos: self.pos,
            message: message.into(),
        })
    }

    fn eof(&self) -> bool {
        self.at >= self.complete.len()
    }

    fn remaining(&self) -> &'a [u8] {
        self.complete.get(self.at..).unwrap_or_default()
    }

    fn peek_rune(&self) -> Option<char> {
        if self.eof() {
            None
        } else {
            Some(decode_rune(self.remaining()).0)
        }
    }

    fn peek_prefix(&self, prefix: &str) -> bool {
        self.remaining().starts_with(prefix.as_bytes())
    }

    fn read_rune(&mut self) -> Option<char> {
        if self.eof() {
            return None;
        }
        let (c, size) = decode_rune(self.remaining());
        self.at += size;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.line_rune = 1;
        } else {
            self.pos.line_rune += 1;
        }
        self.pos.byte += size;
        Some(c)
    }

    fn start_token(&mut self) {
        self.token_start = self.at;
        self.token.text.clear();
        self.token.pos = self.pos;
    }

    fn end_token(&mut self, kind: Kind) {
        self.token.kind = kind;
        let mut raw = self
            .complete
            .get(self.token_start..self.at)
            .unwrap_or_default();
        if matches!(kind, Kind::Comment | Kind::EolComment) {
            raw = raw
                .strip_suffix(b"\r\n")
                .or_else(|| raw.strip_suffix(b"\n"))
                .unwrap_or(raw);
        }
        self.token.text = raw.to_vec();
        self.token.end = self.pos;
    }

    pub(super) fn peek(&self) -> Kind {
        self.token.kind
    }

    pub(super) fn lex(&mut self) -> Result<Token> {
        let tok = self.token.clone();
        self.read_token()?;
        Ok(tok)
    }

    pub(super) fn read_token(&mut self) -> Result<()> {
        while let Some(c) = self.peek_rune() {
            if c == ' ' || c == '\t' || c == '\r' {
                self.read_rune();
                continue;
            }
            if self.peek_prefix("//") {
                self.start_token();
                // A comment is a suffix comment when something other than space precedes it on
                // its line.
                let here = self.at;
                let line_start = self.complete[..here]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let suffix = !is_blank(&self.complete[line_start..here]);
                while let Some(c) = self.read_rune() {
                    if c == '\n' {
                        break;
                    }
                }
                if !suffix {
                    self.end_token(Kind::Comment);
                    return Ok(());
                }
                self.end_token(Kind::EolComment);
                self.suffix_comments.push(Comment {
                    start: self.token.pos,
                    token: go_lossy(&self.token.text),
                });
                return Ok(());
            }
            if self.peek_prefix("/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            break;
        }

        self.start_token();
        let Some(c) = self.peek_rune() else {
            self.end_token(Kind::Eof);
            return Ok(());
        };
        match c {
            '\n' => {
                self.read_rune();
                self.end_token(Kind::Newline);
                return Ok(());
            }
            '(' | ')' | '[' | ']' | '{' | '}' | ',' => {
                self.read_rune();
                self.end_token(Kind::Punct(c as u8));
                return Ok(());
            }
            '"' | '`' => {
                let quote = c;
                self.read_rune();
                loop {
                    if self.eof() {
                        self.pos = self.token.pos;
                        return self.error("unexpected EOF in string");
                    }
                    if self.peek_rune() == Some('\n') {
                        return self.error("unexpected newline in string");
                    }
                    let c = self.read_rune();
                    if c == Some(quote) {
                        break;
                    }
                    if c == Some('\\') && quote != '`' {
                        if self.eof() {
                            self.pos = self.token.pos;
                            return self.error("unexpected EOF in string");
                        }
                        self.read_rune();
                    }
                }
                self.end_token(Kind::String);
                return Ok(());
            }
            _ => {}
        }

        if !is_ident_rune(c) {
            return self.error(format!("unexpected input character {}", quote_rune(c)));
        }
        while let Some(c) = self.peek_rune() {
            if !is_ident_rune(c) || self.peek_prefix("//") {
                break;
            }
            if self.peek_prefix("/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            self.read_rune();
        }
        self.end_token(Kind::Ident);
        Ok(())
    }
}

/// Bytes as a string the way Go shows them when it must be UTF-8: each byte that does not
/// start a valid sequence becomes U+FFFD (unlike `String::from_utf8_lossy`, which replaces a
/// truncated sequence as a whole).
pub(crate) fn go_lossy(mut b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(b.len() + 8);
    while !b.is_empty() {
        let (c, n) = decode_rune(b);
        out.push(c);
        b = &b[n..];
    }
    out
}

/// Whether `b` is empty after `bytes.TrimSpace`: only (validly encoded) Unicode white space.
fn is_blank(mut b: &[u8]) -> bool {
    while !b.is_empty() {
        let (c, n) = decode_rune(b);
        if !is_go_space(c) {
            return false;
        }
        b = &b[n..];
    }
    true
}

/// Go's `unicode.IsSpace`.
fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}
