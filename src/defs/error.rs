//! Errors of the CUE subset: every error carries the `file:line:col` where it
//! was found and a message a person can act on. Conflicts also name the
//! position of the other side inside the message.

use std::fmt;

/// A position in a source file, 1-based line and byte column (as `cue` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Index into the evaluation's file table.
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// One error of loading, parsing or evaluating CUE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CueError {
    /// File name as given on the command line or found in `defs/`; empty when unknown.
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// The value is not concrete yet (more unification could fix it), as
    /// opposed to wrong. Such errors inside definitions are not reported.
    pub incomplete: bool,
}

impl CueError {
    /// An error with no source position (I/O, configuration).
    pub fn bare(file: impl Into<String>, message: impl Into<String>) -> Self {
        CueError {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
            incomplete: false,
        }
    }
}

impl fmt::Display for CueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.is_empty(), self.line) {
            (true, _) => write!(f, "{}", self.message),
            (false, 0) => write!(f, "{}: {}", self.file, self.message),
            (false, _) => write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message),
        }
    }
}

/// File names of one evaluation, so positions can be rendered.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub names: Vec<String>,
}

impl Files {
    pub fn name(&self, pos: Pos) -> &str {
        self.names.get(pos.file as usize).map(String::as_str).unwrap_or("")
    }

    pub fn err(&self, pos: Pos, message: impl Into<String>) -> CueError {
        CueError {
            file: self.name(pos).to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            incomplete: false,
        }
    }

    /// An error saying a value is not concrete (yet).
    pub fn incomplete(&self, pos: Pos, message: impl Into<String>) -> CueError {
        CueError {
            incomplete: true,
            ..self.err(pos, message)
        }
    }

    /// `file:line:col` of a position, for messages that name a second position.
    pub fn at(&self, pos: Pos) -> String {
        format!("{}:{}:{}", self.name(pos), pos.line, pos.col)
    }
}

/// The message used for every construct outside the subset.
pub fn unsupported(what: &str) -> String {
    format!("{what} is not supported by Substrate's CUE subset")
}
