//! Syntax tree of the CUE subset. Every node that can be the subject of an
//! error carries its source position.

use crate::defs::error::Pos;

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub name: String,
    pub package: Option<(String, Pos)>,
    /// Length of the source text in bytes (sizes the evaluation budget).
    pub size: usize,
    pub imports: Vec<Import>,
    /// The file's declarations as one struct literal (the package's root).
    pub body: Expr,
}

/// `import name "path"`: `name` (default: the path's last element, or
/// the `:pkg` qualifier) refers to the package in this file.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub name: String,
    pub path: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Identifier, definition (`#x`) or quoted label, already decoded.
    Name { name: String, quoted: bool },
    /// `"\(expr)…"`: computed when the struct is evaluated (comprehensions).
    Interp(Box<Expr>),
    /// `[expr]` or `[alias=expr]`.
    Pattern { alias: Option<String>, expr: Box<Expr> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `X=label: …`: `X` refers to this field in the enclosing scope.
    pub alias: Option<String>,
    pub label: Label,
    pub label_pos: Pos,
    pub optional: bool,
    /// `name!:`: must be made regular by some other declaration.
    pub required: bool,
    pub value: Expr,
    /// Attributes after the value: (name, body, position).
    pub attrs: Vec<(String, String, Pos)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    For {
        key: Option<String>,
        value: String,
        source: Expr,
        pos: Pos,
    },
    If {
        cond: Expr,
        pos: Pos,
    },
    Let {
        name: String,
        value: Expr,
        pos: Pos,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decl {
    Field(Field),
    Let {
        name: String,
        value: Expr,
        pos: Pos,
    },
    Comprehension {
        clauses: Vec<Clause>,
        body: Box<Expr>,
    },
    /// `...` inside a struct: the struct stays open even in a definition.
    Ellipsis(Pos),
    /// An expression written without a label: unified into the struct
    /// (`{#Base, port: 1}`).
    Embed(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64, crate::defs::value::Exp),
    Str(String),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum InterpPart {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    Default,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    Match,
    NotMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    LOr,
    LAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Match,
    NotMatch,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Lit(Lit),
    Interp(Vec<InterpPart>),
    Ident(String),
    Struct(Vec<Decl>),
    List {
        elems: Vec<Expr>,
        tail: Option<Box<Expr>>,
    },
    /// `x.name`, with the position of `name` (where a missing or optional
    /// field is reported).
    Select(Box<Expr>, String, Pos),
    Index(Box<Expr>, Box<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
    /// `_|_`
    Bottom,
    /// `for … if … let … {…}` as an element of a list literal: yields
    /// zero or more elements.
    Comprehension {
        clauses: Vec<Clause>,
        body: Box<Expr>,
    },
    /// `f(args…)`: a builtin function.
    Call(Box<Expr>, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}
