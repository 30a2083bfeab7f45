//! The go.mod syntax layer: statements, blocks and attached comments, parsed from the lexer's
//! tokens the way `golang.org/x/mod/modfile` (read.go) does.
//!
//! The grammar is line-oriented: a statement is a run of tokens up to a newline or a `//` comment;
//! a statement whose last token is `(` followed by the end of the line opens a block of lines
//! closed by a `)` on its own line. Whole-line comments directly above a statement, and a comment
//! after its last token, are attached to it (modfile's "before" and "suffix" comments); that is how
//! `// Deprecated:` and retraction rationales are found.

use super::lexer::{Kind, Lexer, Result};
use super::lexer::{Position, go_lossy};

/// One `//` comment; an empty `token` stands for a preserved blank line inside a block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Comment {
    pub(crate) start: Position,
    /// The comment text including `//`, without the line terminator.
    pub(crate) token: String,
}

/// Comments attached to a piece of syntax.
#[derive(Debug, Clone, Default)]
pub(crate) struct Comments {
    /// Whole-line comments directly above.
    pub(crate) before: Vec<Comment>,
    /// A comment after the last token on the same line.
    pub(crate) suffix: Vec<Comment>,
}

/// A single statement: its tokens (quoted strings keep their quotes).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) start: Position,
    pub(crate) end: Position,
    pub(crate) tokens: Vec<Vec<u8>>,
    pub(crate) comments: Comments,
}

/// A factored block `verb ( lines… )`.
#[derive(Debug, Clone)]
pub(crate) struct LineBlock {
    pub(crate) start: Position,
    pub(crate) tokens: Vec<Vec<u8>>,
    pub(crate) lines: Vec<Line>,
    pub(crate) comments: Comments,
    lparen: Position,
    lparen_comments: Comments,
    rparen: Position,
    rparen_comments: Comments,
}

/// A top-level statement.
#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    Line(Line),
    Block(LineBlock),
    /// Whole-line comments not attached to a statement.
    Comments(Position, Comments),
}

/// The parsed file: statements plus the suffix comments no statement took.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSyntax {
    pub(crate) stmts: Vec<Stmt>,
}

/// Parses go.mod text into statements with comments attached.
pub(crate) fn parse(data: &[u8]) -> Result<FileSyntax> {
    let mut lx = Lexer::new(data);
    lx.read_token()?;
    let mut file = FileSyntax::default();
    parse_file(&mut lx, &mut file)?;
    let suffix = std::mem::take(&mut lx.suffix_comments);
    assign_suffix_comments(&mut file, suffix);
    Ok(file)
}

fn parse_file(lx: &mut Lexer<'_>, file: &mut FileSyntax) -> Result<()> {
    let mut cb: Option<(Position, Vec<Comment>)> = None;
    loop {
        match lx.peek() {
            Kind::Newline => {
                lx.lex()?;
                if let Some((pos, before)) = cb.take() {
                    file.stmts.push(Stmt::Comments(
                        pos,
                        Comments {
                            before,
                            suffix: Vec::new(),
                        },
                    ));
                }
            }
            Kind::Comment => {
                let tok = lx.lex()?;
                cb.get_or_insert_with(|| (tok.pos, Vec::new()))
                    .1
                    .push(Comment {
                        start: tok.pos,
                        token: go_lossy(&tok.text),
                    });
            }
            Kind::Eof => {
                if let Some((pos, before)) = cb.take() {
                    file.stmts.push(Stmt::Comments(
                        pos,
                        Comments {
                            before,
                            suffix: Vec::new(),
                        },
                    ));
                }
                return Ok(());
            }
            _ => {
                let mut stmt = parse_stmt(lx)?;
                if let Some((_, before)) = cb.take() {
                    match &mut stmt {
                        Stmt::Line(l) => l.comments.before = before,
                        Stmt::Block(b) => b.comments.before = before,
                        Stmt::Comments(_, c) => c.before = before,
                    }
                }
                file.stmts.push(stmt);
            }
        }
    }
}

fn parse_stmt(lx: &mut Lexer<'_>) -> Result<Stmt> {
    let tok = lx.lex()?;
    let start = tok.pos;
    let mut end = tok.end;
    let mut tokens = vec![tok.text];
    loop {
        let tok = lx.lex()?;
        if tok.kind.is_eol() {
            return Ok(Stmt::Line(Line {
                start,
                end,
                tokens,
                comments: Comments::default(),
            }));
        }
        if tok.kind == Kind::Punct(b'(') {
            let next = lx.peek();
            if next.is_eol() {
                return Ok(Stmt::Block(parse_line_block(lx, start, tokens, tok.pos)?));
            } else if next == Kind::Punct(b')') {
                let rparen = lx.lex()?;
                if lx.peek().is_eol() {
                    lx.lex()?;
                    return Ok(Stmt::Block(LineBlock {
                        start,
                        tokens,
                        lines: Vec::new(),
                        comments: Comments::default(),
                        lparen: tok.pos,
                        lparen_comments: Comments::default(),
                        rparen: rparen.pos,
                        rparen_comments: Comments::default(),
                    }));
                }
                tokens.push(tok.text);
                tokens.push(rparen.text);
            } else {
                tokens.push(tok.text);
            }
            // Like modfile, a '(' in mid-line does not move the statement's end.
            continue;
        }
        tokens.push(tok.text);
        end = tok.end;
    }
}

fn parse_line_block(
    lx: &mut Lexer<'_>,
    start: Position,
    tokens: Vec<Vec<u8>>,
    lparen: Position,
) -> Result<LineBlock> {
    let mut block = LineBlock {
        start,
        tokens,
        lines: Vec::new(),
        comments: Comments::default(),
        lparen,
        lparen_comments: Comments::default(),
        rparen: lparen,
        rparen_comments: Comments::default(),
    };
    let mut comments: Vec<Comment> = Vec::new();
    loop {
        match lx.peek() {
            Kind::EolComment => {
                lx.lex()?;
            }
            Kind::Newline => {
                lx.lex()?;
                let keep = if comments.is_empty() {
                    !block.lines.is_empty()
                } else {
                    comments.last().is_some_and(|c| !c.token.is_empty())
                };
                if keep {
                    comments.push(Comment::default());
                }
            }
            Kind::Comment => {
                let tok = lx.lex()?;
                comments.push(Comment {
                    start: tok.pos,
                    token: go_lossy(&tok.text),
                });
            }
            Kind::Eof => {
                return lx.error(format!(
                    "syntax error (unterminated block started at go.mod:{}:{})",
                    block.start.line, block.start.line_rune
                ));
            }
            Kind::Punct(b')') => {
                let rparen = lx.lex()?;
                if comments.len() == 1 && comments[0] == Comment::default() {
                    comments.clear();
                }
                block.rparen_comments.before = comments;
                block.rparen = rparen.pos;
                if !lx.peek().is_eol() {
                    return lx.error("syntax error (expected newline after closing paren)");
                }
                lx.lex()?;
                return Ok(block);
            }
            _ => {
                let mut line = parse_line(lx)?;
                line.comments.before = std::mem::take(&mut comments);
                block.lines.push(line);
            }
        }
    }
}

fn parse_line(lx: &mut Lexer<'_>) -> Result<Line> {
    let tok = lx.lex()?;
    if tok.kind.is_eol() {
        return lx.error("internal parse error: parseLine at end of line");
    }
    let start = tok.pos;
    let mut end = tok.end;
    let mut tokens = vec![tok.text];
    loop {
        let tok = lx.lex()?;
        if tok.kind.is_eol() {
            return Ok(Line {
                start,
                end,
                tokens,
                comments: Comments::default(),
            });
        }
        tokens.push(tok.text);
        end = tok.end;
    }
}

/// Attaches each end-of-line comment to the syntax that ends before it on the same line, walking
/// the syntax in reverse post-order as modfile's `assignComments` does. (Whole-line comments were
/// attached by the parser already.)
fn assign_suffix_comments(file: &mut FileSyntax, mut suffix: Vec<Comment>) {
    // Post-order of (start, end, slot), visited backwards.
    fn take(suffix: &mut Vec<Comment>, start: Position, end: Position, slot: &mut Vec<Comment>) {
        if start.line != end.line {
            return;
        }
        while let Some(last) = suffix.last() {
            if end.byte > last.start.byte {
                break;
            }
            if let Some(c) = suffix.pop() {
                slot.push(c);
            }
        }
        slot.reverse();
    }
    for stmt in file.stmts.iter_mut().rev() {
        match stmt {
            Stmt::Line(l) => take(&mut suffix, l.start, l.end, &mut l.comments.suffix),
            Stmt::Comments(pos, c) => take(&mut suffix, *pos, *pos, &mut c.suffix),
            Stmt::Block(b) => {
                let end = b.rparen.after_paren();
                take(&mut suffix, b.start, end, &mut b.comments.suffix);
                take(&mut suffix, b.rparen, end, &mut b.rparen_comments.suffix);
                for l in b.lines.iter_mut().rev() {
                    take(&mut suffix, l.start, l.end, &mut l.comments.suffix);
                }
                take(
                    &mut suffix,
                    b.lparen,
                    b.lparen.after_paren(),
                    &mut b.lparen_comments.suffix,
                );
            }
        }
    }
}
