//! Parser: tokens → [`ast::File`]. Recognises the whole subset and turns
//! every construct outside it (slices, typed ellipses, value aliases …)
//! into an "is not supported" error at
//! the construct's position. Nesting is limited to [`MAX_DEPTH`] so adversarial
//! input cannot exhaust the stack.

use crate::defs::ast::*;
use crate::defs::error::{unsupported, CueError, Files, Pos};
use crate::defs::lexer::{lex, StrPart, Tok, Token};

/// Deepest nesting accepted, counted in parser recursion steps (a nested
/// struct field costs three; 1000 allows some 300 levels of structs).
pub const MAX_DEPTH: usize = 1000;

pub fn parse_file(src: &str, file: u32, files: &Files) -> Result<File, CueError> {
    let toks = lex(src, file, files)?;
    let mut p = Parser {
        toks,
        i: 0,
        files,
        depth: 0,
    };
    let mut package = None;
    if p.peek() == &Tok::Package {
        let pos = p.pos();
        p.i += 1;
        match p.next() {
            Token { tok: Tok::Ident(n), .. } => package = Some((n, pos)),
            t => return Err(p.err(t.pos, "expected package name")),
        }
        p.end_decl()?;
    }
    let imports = p.imports()?;
    let pos = p.pos();
    let decls = p.decls(true)?;
    Ok(File {
        name: files.name(Pos { file, line: 0, col: 0 }).to_string(),
        package,
        size: src.len(),
        imports,
        body: Expr {
            kind: ExprKind::Struct(decls),
            pos,
        },
    })
}

/// Keywords may be used as field labels (`in: 1`).
fn keyword_name(t: &Tok) -> Option<&'static str> {
    Some(match t {
        Tok::Package => "package",
        Tok::Import => "import",
        Tok::For => "for",
        Tok::In => "in",
        Tok::If => "if",
        Tok::Let => "let",
        _ => return None,
    })
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    files: &'a Files,
    depth: usize,
}

fn tok_desc(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s}"),
        Tok::Int(s) | Tok::Float(s) => format!("number {s}"),
        Tok::Str(_) => "string".into(),
        Tok::Bytes(_) => "bytes".into(),
        Tok::Attr(n, _) => format!("attribute @{n}"),
        Tok::P(p) => format!("'{p}'"),
        Tok::Comma => "',' or newline".into(),
        Tok::Eof => "end of file".into(),
        other => format!("keyword {}", format!("{other:?}").to_lowercase()),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, k: usize) -> &Tok {
        self.toks
            .get(self.i + k)
            .or(self.toks.last())
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }

    fn pos(&self) -> Pos {
        self.toks
            .get(self.i)
            .or(self.toks.last())
            .map(|t| t.pos)
            .unwrap_or_default()
    }

    fn next(&mut self) -> Token {
        let t = self.toks.get(self.i).or(self.toks.last()).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            pos: Pos::default(),
        });
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> CueError {
        self.files.err(pos, msg)
    }

    fn unexpected(&self, what: &str) -> CueError {
        self.err(self.pos(), format!("expected {what}, found {}", tok_desc(self.peek())))
    }

    fn expect_p(&mut self, p: &str) -> Result<Pos, CueError> {
        if matches!(self.peek(), Tok::P(q) if *q == p) {
            Ok(self.next().pos)
        } else {
            Err(self.unexpected(&format!("'{p}'")))
        }
    }

    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::P(q) if *q == p)
    }

    fn enter(&mut self) -> Result<(), CueError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(self.pos(), "nesting too deep"));
        }
        Ok(())
    }

    /// After a declaration: a comma, or the end of the enclosing struct/file.
    fn end_decl(&mut self) -> Result<(), CueError> {
        match self.peek() {
            Tok::Comma => {
                self.i += 1;
                Ok(())
            }
            Tok::Eof | Tok::P("}") => Ok(()),
            _ => Err(self.unexpected("',' or newline")),
        }
    }

    /// `import "p"`, `import n "p"`, `import ( … )` before the declarations.
    fn imports(&mut self) -> Result<Vec<Import>, CueError> {
        let mut out = Vec::new();
        while self.peek() == &Tok::Import {
            self.i += 1;
            if self.is_p("(") {
                self.i += 1;
                loop {
                    match self.peek() {
                        Tok::Comma => self.i += 1,
                        Tok::P(")") => {
                            self.i += 1;
                            break;
                        }
                        _ => {
                            out.push(self.import_spec()?);
                            if !matches!(self.peek(), Tok::Comma | Tok::P(")")) {
                                return Err(self.unexpected("',' or ')'"));
                            }
                        }
                    }
                }
            } else {
                out.push(self.import_spec()?);
            }
            self.end_decl()?;
        }
        Ok(out)
    }

    fn import_spec(&mut self) -> Result<Import, CueError> {
        let pos = self.pos();
        let alias = match self.peek().clone() {
            Tok::Ident(n) => {
                self.i += 1;
                Some(n)
            }
            _ => None,
        };
        let path = match self.next() {
            Token { tok: Tok::Str(p), pos } => match p.as_slice() {
                [StrPart::Lit(s)] => s.clone(),
                _ => return Err(self.err(pos, "import path must be a plain string")),
            },
            t => return Err(self.err(t.pos, format!("expected import path, found {}", tok_desc(&t.tok)))),
        };
        // `module/path:pkg` names package pkg; otherwise the last element
        let name = match alias {
            Some(a) => a,
            None => match path.rsplit_once(':') {
                Some((_, q)) => q.to_string(),
                None => path.rsplit('/').next().unwrap_or(&path).to_string(),
            },
        };
        Ok(Import { name, path, pos })
    }

    fn decls(&mut self, top: bool) -> Result<Vec<Decl>, CueError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Tok::Eof if top => return Ok(out),
                Tok::P("}") if !top => return Ok(out),
                Tok::Eof => return Err(self.unexpected("'}'")),
                Tok::Comma => {
                    self.i += 1;
                    continue;
                }
                // a declaration attribute (`@if(…)`, `@extern(…)`): ignored
                Tok::Attr(..) => {
                    self.i += 1;
                    self.end_decl()?;
                    continue;
                }
                _ => {}
            }
            let d = self.decl()?;
            if let Decl::Let { name, pos, .. } = &d {
                let again = out.iter().any(|e| matches!(e, Decl::Let { name: n, .. } if n == name));
                if again {
                    return Err(self.err(*pos, format!("alias \"{name}\" redeclared in same scope")));
                }
            }
            out.push(d);
            self.end_decl()?;
        }
    }

    fn decl(&mut self) -> Result<Decl, CueError> {
        let pos = self.pos();
        if keyword_name(self.peek()).is_some()
            && (matches!(self.peek_at(1), Tok::P(":"))
                || matches!((self.peek_at(1), self.peek_at(2)), (Tok::P("?"), Tok::P(":"))))
        {
            return self.field();
        }
        if let (Tok::Ident(n), Tok::P("=")) = (self.peek(), self.peek_at(1)) {
            let alias = n.clone();
            self.i += 2;
            let Some(label) = self.try_label()? else {
                return Err(self.err(pos, unsupported("an alias of a value or embedding (X=expr)")));
            };
            return match self.field_rest(label)? {
                Decl::Field(f) => Ok(Decl::Field(Field {
                    alias: Some(alias),
                    ..f
                })),
                d => Ok(d),
            };
        }
        // clone only cheap tokens: identifiers and strings go to `field`
        let head = match self.peek() {
            t @ (Tok::Import | Tok::Package | Tok::Let | Tok::For | Tok::If | Tok::P(_)) => t.clone(),
            _ => Tok::Eof,
        };
        match head {
            Tok::Import => Err(self.err(pos, "imports must come before the other declarations")),
            Tok::Package => Err(self.err(pos, "package clause must be the first declaration")),
            Tok::Let => {
                self.i += 1;
                let name = match self.next() {
                    Token { tok: Tok::Ident(n), .. } => n,
                    t => return Err(self.err(t.pos, "expected identifier after let")),
                };
                self.expect_p("=")?;
                let value = self.expr()?;
                Ok(Decl::Let { name, value, pos })
            }
            Tok::For | Tok::If => {
                let clauses = self.clauses()?;
                if !self.is_p("{") {
                    return Err(self.unexpected("'{' after comprehension clauses"));
                }
                let body = self.operand()?;
                Ok(Decl::Comprehension {
                    clauses,
                    body: Box::new(body),
                })
            }
            Tok::P("...") => {
                self.i += 1;
                if !matches!(self.peek(), Tok::Comma | Tok::P("}") | Tok::Eof) {
                    return Err(self.err(pos, unsupported("a typed struct ellipsis (...T)")));
                }
                Ok(Decl::Ellipsis(pos))
            }
            _ => self.field(),
        }
    }

    fn clauses(&mut self) -> Result<Vec<Clause>, CueError> {
        let mut clauses = Vec::new();
        loop {
            let pos = self.pos();
            match self.peek() {
                Tok::For => {
                    self.i += 1;
                    let first = self.ident_name("identifier after for")?;
                    let (key, value) = if matches!(self.peek(), Tok::Comma) {
                        self.i += 1;
                        (Some(first), self.ident_name("identifier")?)
                    } else {
                        (None, first)
                    };
                    if self.peek() != &Tok::In {
                        return Err(self.unexpected("'in'"));
                    }
                    self.i += 1;
                    let source = self.expr()?;
                    clauses.push(Clause::For {
                        key,
                        value,
                        source,
                        pos,
                    });
                }
                Tok::If => {
                    self.i += 1;
                    let cond = self.expr()?;
                    clauses.push(Clause::If { cond, pos });
                }
                Tok::Let if !clauses.is_empty() => {
                    self.i += 1;
                    let name = self.ident_name("identifier after let")?;
                    self.expect_p("=")?;
                    let value = self.expr()?;
                    clauses.push(Clause::Let { name, value, pos });
                }
                _ => return Ok(clauses),
            }
        }
    }

    fn ident_name(&mut self, what: &str) -> Result<String, CueError> {
        match self.peek().clone() {
            Tok::Ident(n) => {
                self.i += 1;
                Ok(n)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// Tries to read `label[?]:` at the current token; restores the position
    /// and returns None when this is not a field.
    fn try_label(&mut self) -> Result<Option<(Label, Pos, bool, bool)>, CueError> {
        let start = self.i;
        let pos = self.pos();
        // Matched by reference: most declarations are tried here first, and
        // cloning each token was a tenth of loading a defs tree.
        let label = match self.peek() {
            t if keyword_name(t).is_some() => {
                let name = keyword_name(t).unwrap_or_default().to_string();
                self.i += 1;
                Label::Name { name, quoted: false }
            }
            Tok::Ident(n) => {
                let name = n.clone();
                self.i += 1;
                Label::Name { name, quoted: false }
            }
            Tok::Str(parts) => match parts.as_slice() {
                [StrPart::Lit(s)] => {
                    let name = s.clone();
                    self.i += 1;
                    Label::Name { name, quoted: true }
                }
                _ => {
                    let parts = parts.clone();
                    self.i += 1;
                    if !(self.is_p(":") || self.is_p("?")) {
                        self.i = start;
                        return Ok(None);
                    }
                    let kind = self.string(parts)?;
                    Label::Interp(Box::new(Expr { kind, pos }))
                }
            },
            Tok::P("[") => {
                self.i += 1;
                let alias = match (self.peek().clone(), self.peek_at(1)) {
                    (Tok::Ident(n), Tok::P("=")) => {
                        self.i += 2;
                        Some(n)
                    }
                    _ => None,
                };
                self.enter()?;
                let e = self.expr();
                self.depth -= 1;
                let Ok(expr) = e else {
                    self.i = start;
                    return Ok(None);
                };
                if !self.is_p("]") {
                    self.i = start;
                    return Ok(None);
                }
                self.i += 1;
                Label::Pattern {
                    alias,
                    expr: Box::new(expr),
                }
            }
            Tok::P("(") => {
                // (expr): dynamic label — find out by scanning to the matching ')'
                let mut depth = 0usize;
                let mut k = self.i;
                while let Some(t) = self.toks.get(k) {
                    match t.tok {
                        Tok::P("(") => depth += 1,
                        Tok::P(")") => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Tok::Eof => break,
                        _ => {}
                    }
                    k += 1;
                }
                let after = |j: usize| self.toks.get(k + j).map(|t| &t.tok);
                let is_label = matches!(after(1), Some(Tok::P(":")))
                    || matches!((after(1), after(2)), (Some(Tok::P("?")), Some(Tok::P(":"))));
                if !is_label {
                    return Ok(None);
                }
                self.i += 1;
                let e = self.expr()?;
                self.expect_p(")")?;
                Label::Interp(Box::new(e))
            }
            _ => return Ok(None),
        };
        let optional = if self.is_p("?") {
            self.i += 1;
            true
        } else {
            false
        };
        let required = !optional && self.is_p("!") && matches!(self.peek_at(1), Tok::P(":"));
        if required {
            self.i += 1;
        }
        if !self.is_p(":") {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        if let Label::Name { name, quoted: false } = &label {
            if name == "_" {
                return Err(self.err(pos, "cannot use _ as label"));
            }
        }
        if optional && matches!(label, Label::Pattern { .. }) {
            return Err(self.err(pos, "pattern constraints cannot be optional"));
        }
        Ok(Some((label, pos, optional, required)))
    }

    fn field(&mut self) -> Result<Decl, CueError> {
        let Some(label) = self.try_label()? else {
            return Ok(Decl::Embed(self.expr()?));
        };
        self.field_rest(label)
    }

    fn field_rest(
        &mut self,
        (label, label_pos, optional, required): (Label, Pos, bool, bool),
    ) -> Result<Decl, CueError> {
        self.enter()?;
        let value = if let Some(inner) = self.try_label()? {
            let vpos = inner.1;
            let d = self.field_rest(inner)?;
            Expr {
                kind: ExprKind::Struct(vec![d]),
                pos: vpos,
            }
        } else {
            let e = self.expr()?;
            if matches!(e.kind, ExprKind::Ident(_)) && matches!(self.peek(), Tok::P("=")) {
                return Err(self.err(e.pos, unsupported("an alias of a value (X=expr)")));
            }
            e
        };
        self.depth -= 1;
        let mut attrs = Vec::new();
        while let Tok::Attr(name, body) = self.peek() {
            attrs.push((name.clone(), body.clone(), self.pos()));
            self.i += 1;
        }
        Ok(Decl::Field(Field {
            alias: None,
            label,
            label_pos,
            optional,
            required,
            value,
            attrs,
        }))
    }

    pub fn expr(&mut self) -> Result<Expr, CueError> {
        self.enter()?;
        let r = self.binary(1);
        self.depth -= 1;
        r
    }

    fn binop(&self) -> Result<Option<(BinOp, u8)>, CueError> {
        let Tok::P(p) = self.peek() else {
            return Ok(None);
        };
        Ok(Some(match *p {
            "|" => (BinOp::Or, 1),
            "&" => (BinOp::And, 2),
            "||" => (BinOp::LOr, 3),
            "&&" => (BinOp::LAnd, 4),
            "==" => (BinOp::Eq, 5),
            "!=" => (BinOp::Ne, 5),
            "<" => (BinOp::Lt, 5),
            "<=" => (BinOp::Le, 5),
            ">" => (BinOp::Gt, 5),
            ">=" => (BinOp::Ge, 5),
            "=~" => (BinOp::Match, 5),
            "!~" => (BinOp::NotMatch, 5),
            "+" => (BinOp::Add, 6),
            "-" => (BinOp::Sub, 6),
            "*" => (BinOp::Mul, 7),
            "/" => (BinOp::Div, 7),
            _ => return Ok(None),
        }))
    }

    fn binary(&mut self, min: u8) -> Result<Expr, CueError> {
        let mut lhs = self.unary()?;
        let mut chain = 0usize;
        while let Some((op, prec)) = self.binop()? {
            if prec < min {
                break;
            }
            chain += 1;
            if chain > 10_000 {
                return Err(self.err(self.pos(), "expression too long"));
            }
            self.i += 1;
            self.enter()?;
            let rhs = self.binary(prec + 1);
            self.depth -= 1;
            let rhs = rhs?;
            let pos = lhs.pos;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                pos,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, CueError> {
        let pos = self.pos();
        let op = match self.peek() {
            Tok::P("-") => UnOp::Neg,
            Tok::P("+") => UnOp::Plus,
            Tok::P("!") => UnOp::Not,
            Tok::P("*") => UnOp::Default,
            Tok::P("<") => UnOp::Lt,
            Tok::P("<=") => UnOp::Le,
            Tok::P(">") => UnOp::Gt,
            Tok::P(">=") => UnOp::Ge,
            Tok::P("!=") => UnOp::Ne,
            Tok::P("=~") => UnOp::Match,
            Tok::P("!~") => UnOp::NotMatch,
            _ => return self.primary(),
        };
        // `-9223372036854775808`: the literal alone would not fit in 64 bits
        if let (UnOp::Neg, Tok::Int(s)) = (op, self.peek_at(1)) {
            if let Ok(n) = format!("-{s}").parse::<i64>() {
                if n == i64::MIN {
                    self.i += 2;
                    return Ok(Expr {
                        kind: ExprKind::Lit(Lit::Int(n)),
                        pos,
                    });
                }
            }
        }
        self.i += 1;
        self.enter()?;
        let e = self.unary();
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(e?)),
            pos,
        })
    }

    fn primary(&mut self) -> Result<Expr, CueError> {
        let mut e = self.operand()?;
        let mut chain = 0usize;
        loop {
            chain += 1;
            if chain > 10_000 {
                return Err(self.err(self.pos(), "expression too long"));
            }
            let next = match self.peek() {
                Tok::P(p) => *p,
                _ => return Ok(e),
            };
            match Tok::P(next) {
                Tok::P(".") => {
                    self.i += 1;
                    let name_pos = self.pos();
                    let name = match self.next() {
                        Token { tok: Tok::Ident(n), .. } => n,
                        Token { tok: Tok::Str(p), pos } => match p.as_slice() {
                            [StrPart::Lit(_)] => {
                                return Err(self.err(pos, unsupported("a quoted selector (a.\"b\"); use a[\"b\"]")))
                            }
                            _ => return Err(self.err(pos, "expected identifier after '.'")),
                        },
                        t => {
                            return Err(self.err(
                                t.pos,
                                format!("expected identifier after '.', found {}", tok_desc(&t.tok)),
                            ))
                        }
                    };
                    let pos = e.pos;
                    e = Expr {
                        kind: ExprKind::Select(Box::new(e), name, name_pos),
                        pos,
                    };
                }
                Tok::P("[") => {
                    self.i += 1;
                    if self.is_p(":") {
                        return Err(self.err(self.pos(), unsupported("a slice expression (a[i:j])")));
                    }
                    let idx = self.expr()?;
                    if self.is_p(":") {
                        return Err(self.err(self.pos(), unsupported("a slice expression (a[i:j])")));
                    }
                    self.expect_p("]")?;
                    let pos = e.pos;
                    e = Expr {
                        kind: ExprKind::Index(Box::new(e), Box::new(idx)),
                        pos,
                    };
                }
                Tok::P("(") => {
                    self.i += 1;
                    let mut args = Vec::new();
                    loop {
                        match self.peek() {
                            Tok::P(")") => {
                                self.i += 1;
                                break;
                            }
                            Tok::Comma => self.i += 1,
                            _ => {
                                args.push(self.expr()?);
                                if !matches!(self.peek(), Tok::Comma | Tok::P(")")) {
                                    return Err(self.unexpected("',' or ')'"));
                                }
                            }
                        }
                    }
                    let pos = e.pos;
                    e = Expr {
                        kind: ExprKind::Call(Box::new(e), args),
                        pos,
                    };
                }
                _ => return Ok(e),
            }
        }
    }

    fn operand(&mut self) -> Result<Expr, CueError> {
        let t = self.next();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::Ident(n) => match n.as_str() {
                "true" => ExprKind::Lit(Lit::Bool(true)),
                "false" => ExprKind::Lit(Lit::Bool(false)),
                "null" => ExprKind::Lit(Lit::Null),
                _ => ExprKind::Ident(n),
            },
            Tok::Int(s) => ExprKind::Lit(Lit::Int(self.int(&s, pos)?)),
            Tok::Float(s) => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => ExprKind::Lit(Lit::Float(f, crate::defs::value::Exp::of_literal(&s))),
                _ => return Err(self.err(pos, unsupported("a float literal outside the 64-bit range"))),
            },
            Tok::Str(parts) => self.string(parts)?,
            Tok::Bottom => ExprKind::Bottom,
            Tok::Bytes(b) => ExprKind::Lit(Lit::Bytes(b)),
            Tok::P("(") => {
                let e = self.expr()?;
                self.expect_p(")")?;
                ExprKind::Paren(Box::new(e))
            }
            Tok::P("{") => {
                self.enter()?;
                let d = self.decls(false);
                self.depth -= 1;
                let d = d?;
                self.expect_p("}")?;
                ExprKind::Struct(d)
            }
            Tok::P("[") => self.list()?,
            Tok::For | Tok::If | Tok::Let => {
                return Err(self.err(pos, format!("unexpected keyword {}", tok_desc(&t.tok))))
            }
            other => return Err(self.err(pos, format!("expected expression, found {}", tok_desc(&other)))),
        };
        Ok(Expr { kind, pos })
    }

    fn int(&self, s: &str, pos: Pos) -> Result<i64, CueError> {
        let r = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
            i64::from_str_radix(o, 8)
        } else if let Some(b) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
            i64::from_str_radix(b, 2)
        } else {
            if s.len() > 1 && s.starts_with('0') {
                return Err(self.err(pos, "illegal integer number: leading zero (octal needs 0o)"));
            }
            s.parse::<i64>()
        };
        r.map_err(|_| {
            if s.chars().skip(2).all(|c| c.is_ascii_hexdigit()) && s.len() > 2 {
                self.err(pos, unsupported("an integer outside the 64-bit range"))
            } else {
                self.err(pos, format!("malformed integer literal {s}"))
            }
        })
    }

    fn string(&mut self, parts: Vec<StrPart>) -> Result<ExprKind, CueError> {
        if let [StrPart::Lit(s)] = parts.as_slice() {
            return Ok(ExprKind::Lit(Lit::Str(s.clone())));
        }
        let mut out = Vec::new();
        for p in parts {
            match p {
                StrPart::Lit(s) => out.push(InterpPart::Lit(s)),
                StrPart::Interp(toks) => {
                    let mut sub = Parser {
                        toks,
                        i: 0,
                        files: self.files,
                        depth: self.depth + 1,
                    };
                    if sub.depth > MAX_DEPTH {
                        return Err(self.err(sub.pos(), "nesting too deep"));
                    }
                    let e = sub.expr()?;
                    if sub.peek() != &Tok::Eof {
                        return Err(sub.unexpected("')' closing the interpolation"));
                    }
                    out.push(InterpPart::Expr(e));
                }
            }
        }
        Ok(ExprKind::Interp(out))
    }

    fn list(&mut self) -> Result<ExprKind, CueError> {
        self.enter()?;
        let mut elems = Vec::new();
        let mut tail = None;
        loop {
            match self.peek() {
                Tok::P("]") => {
                    self.i += 1;
                    break;
                }
                Tok::For | Tok::If => {
                    let pos = self.pos();
                    let clauses = self.clauses()?;
                    if !self.is_p("{") {
                        return Err(self.unexpected("'{' after comprehension clauses"));
                    }
                    let body = self.operand()?;
                    elems.push(Expr {
                        kind: ExprKind::Comprehension {
                            clauses,
                            body: Box::new(body),
                        },
                        pos,
                    });
                    match self.peek() {
                        Tok::Comma => self.i += 1,
                        Tok::P("]") => {}
                        _ => return Err(self.unexpected("',' or ']'")),
                    }
                    continue;
                }
                Tok::P("...") => {
                    let pos = self.next().pos;
                    let t = if matches!(self.peek(), Tok::Comma | Tok::P("]")) {
                        Expr {
                            kind: ExprKind::Ident("_".into()),
                            pos,
                        }
                    } else {
                        self.expr()?
                    };
                    tail = Some(Box::new(t));
                    if matches!(self.peek(), Tok::Comma) {
                        self.i += 1;
                    }
                    self.expect_p("]")?;
                    break;
                }
                _ => {}
            }
            elems.push(self.expr()?);
            match self.peek() {
                Tok::Comma => self.i += 1,
                Tok::P("]") => {}
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
        self.depth -= 1;
        Ok(ExprKind::List {
            elems,
            tail: tail.map(|t| t as Box<Expr>),
        })
    }
}
