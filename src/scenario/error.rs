//! Errors in scenario files, located by file, line and column.

use std::fmt;
use std::ops::Range;

/// What is wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, in plain words.
    pub message: String,
    /// The offending source line, for context.
    pub source_line: Option<String>,
}

impl ScenarioError {
    /// An error at a byte offset of `text`.
    pub(crate) fn at(file: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let mut offset = offset.min(text.len());
        // Never slice inside a character (a bad offset must not panic).
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        let source_line = text[line_start..].lines().next().map(str::to_string);
        ScenarioError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            source_line,
        }
    }

    /// An error at the start of a byte range of `text`.
    pub(crate) fn span(file: &str, text: &str, span: Range<usize>, msg: impl Into<String>) -> Self {
        ScenarioError::at(file, text, span.start, msg)
    }

    /// An error about the file as a whole (it could not be read).
    pub(crate) fn file(file: &str, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
        }
    }

    /// `file:line:column: message`, the first line of the display.
    pub fn headline(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if let Some(src) = &self.source_line {
            let n = self.line.to_string();
            write!(
                f,
                "\n {n} | {src}\n {} | {}^",
                " ".repeat(n.len()),
                " ".repeat(self.column.saturating_sub(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}
