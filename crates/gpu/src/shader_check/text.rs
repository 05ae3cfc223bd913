//! Checks on the WGSL text itself, run before any parser: naga's parser,
//! lowerer, validator and SPIR-V writer, and the driver's compiler, each
//! recurse once per level of nesting, so nesting must be bounded before the
//! text reaches any of them. Every function here is a loop over bytes (UTF-8
//! lead bytes never occur inside another character, so matching the bytes of
//! a character is safe).

use super::refuse;
use crate::GpuError;

/// The source with every comment, and every kind of blank space, turned into
/// ASCII spaces (`\n` kept, so line numbers still hold): brackets and
/// operators in comments must not count, and `else`, a vertical tab or a
/// U+2028 and `if` must read as the two words naga sees. Comments and blank
/// space end exactly where naga's lexer ends them: block comments nest; a
/// line comment ends at any WGSL line break.
pub(super) fn strip_comments(wgsl: &str) -> Vec<u8> {
    let bytes = wgsl.as_bytes();
    let mut out = bytes.to_vec();
    let (mut i, mut depth) = (0usize, 0u32);
    while i < bytes.len() {
        let width = match (bytes[i], bytes.get(i + 1).copied()) {
            (b'/', Some(b'*')) => {
                depth += 1;
                2
            }
            (b'*', Some(b'/')) if depth > 0 => {
                depth -= 1;
                2
            }
            (b'/', Some(b'/')) if depth == 0 => (i..bytes.len())
                .find(|&j| line_break(&bytes[j..]) > 0)
                .map_or(bytes.len(), |end| end)
                .saturating_sub(i),
            _ if depth > 0 => 1,
            _ => blank(&bytes[i..]),
        };
        for c in &mut out[i..i + width] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        i += width.max(1);
    }
    out
}

/// Bytes of the WGSL line break `text` starts with, or 0.
fn line_break(text: &[u8]) -> usize {
    match text {
        [0x0a..=0x0d, ..] => 1,
        [0xc2, 0x85, ..] => 2,
        [0xe2, 0x80, 0xa8 | 0xa9, ..] => 3,
        _ => 0,
    }
}

/// Bytes of the WGSL blank space (Unicode `Pattern_White_Space`) `text`
/// starts with, or 0.
fn blank(text: &[u8]) -> usize {
    match text {
        [b' ' | b'\t', ..] => 1,
        [0xe2, 0x80, 0x8e | 0x8f, ..] => 3,
        _ => line_break(text),
    }
}

/// The most operators (and brackets, calls, member accesses) in one
/// statement: naga's parser itself recursed past a 2 MiB stack on a
/// 100,000-term sum, and a chain of unary operators (`!!!!…`, `- - - …`)
/// nests the same way. An expression cannot nest deeper than its statement
/// has operators.
pub(super) fn check_statements(text: &[u8], max: u32) -> Result<(), GpuError> {
    let mut ops = 0u32;
    for &c in text {
        match c {
            b';' | b'{' | b'}' => ops = 0,
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'<' | b'>' | b'!' | b'~'
            | b'(' | b'[' | b'.' | b',' | b'=' => {
                ops += 1;
                if ops > max {
                    return Err(refuse(format!(
                        "a statement has more than {max} operators, the limit \
                         (max_expression_depth); split it up"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One open bracket (or template list) while scanning.
#[derive(Clone, Copy)]
struct Level {
    /// Nesting depth of what is written directly inside it.
    depth: u32,
    /// `else if` branches of the `if` statement now being read directly in
    /// it: naga nests each one inside the previous one's `else`.
    chain: u32,
    /// A template list (`array<…>`) rather than a bracket.
    template: bool,
}

/// The scanner's state for [`check_nesting`].
struct Nesting {
    levels: Vec<Level>,
    deepest: u32,
    /// The line where the depth first went past the limit.
    first_over: Option<usize>,
    /// The last token was a `}`: an `else` may continue an `if` chain.
    after_close: bool,
    /// The last tokens were `}` `else`: an `if` makes the chain one longer.
    after_else: bool,
    /// The last token names a type or builtin that takes a template list.
    before_template: bool,
}

impl Nesting {
    fn top(&mut self) -> &mut Level {
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }

    /// Any token but `else` right after a `}` ends the `if` chain there.
    fn end_chain_unless_else(&mut self, is_else: bool) {
        if self.after_close && !is_else {
            self.top().chain = 0;
        }
        self.after_close = false;
    }

    fn word(&mut self, word: &[u8]) {
        if self.after_else {
            if word == b"if" {
                self.top().chain += 1;
            } else {
                self.top().chain = 0;
            }
            self.after_else = false;
        } else {
            let is_else = word == b"else";
            self.after_else = self.after_close && is_else;
            self.end_chain_unless_else(is_else);
        }
        self.before_template = takes_template(word);
    }

    fn open(&mut self, template: bool, line: usize, max: u32) {
        if !self.after_else {
            self.end_chain_unless_else(false);
        }
        self.after_else = false;
        let top = *self.top();
        let depth = top.depth.saturating_add(top.chain).saturating_add(1);
        self.levels.push(Level {
            depth,
            chain: 0,
            template,
        });
        self.deepest = self.deepest.max(depth);
        if depth > max && self.first_over.is_none() {
            self.first_over = Some(line);
        }
    }

    /// Template lists still open at a `;` or a closing bracket were never
    /// template lists (`a < b`): they end there.
    fn drop_templates(&mut self) {
        while self.levels.len() > 1 && self.top().template {
            self.levels.pop();
        }
    }

    fn close(&mut self, brace: bool) {
        self.drop_templates();
        // Unbalanced closers are left to the parser's error.
        if self.levels.len() > 1 {
            self.levels.pop();
        }
        self.after_else = false;
        self.after_close = brace;
    }

    fn other(&mut self, c: u8, prev: u8) {
        self.end_chain_unless_else(false);
        self.after_else = false;
        match c {
            // `->` is an arrow, not the end of a template list.
            b'>' if prev != b'-' && self.top().template => {
                self.levels.pop();
            }
            b';' => self.drop_templates(),
            _ => {}
        }
    }
}

/// Names after which `<` opens a template list whose arguments naga parses
/// recursively (`array<array<…>>`). User-declared names cannot take one.
fn takes_template(word: &[u8]) -> bool {
    matches!(
        word,
        b"array" | b"atomic" | b"ptr" | b"var" | b"bitcast" | b"binding_array"
    ) || matches!(word, [b'v', b'e', b'c', b'2'..=b'4'])
        || matches!(word, [b'm', b'a', b't', b'2'..=b'4', b'x', b'2'..=b'4'])
        || word.starts_with(b"texture_")
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Bounds nesting of every kind in one budget, since naga and the driver
/// recurse through all of them alike: blocks (of functions, `if`, `loop`,
/// `continuing`, `for`, `while`, `switch` and its cases), `else if` branches
/// (naga nests each inside the previous `else`: a 2,000-branch chain
/// overflowed a 2 MiB stack and aborted the process), parentheses and calls,
/// index brackets, and template lists.
pub(super) fn check_nesting(text: &[u8], max: u32) -> Result<(), GpuError> {
    let mut n = Nesting {
        levels: vec![Level {
            depth: 0,
            chain: 0,
            template: false,
        }],
        deepest: 0,
        first_over: None,
        after_close: false,
        after_else: false,
        before_template: false,
    };
    let (mut i, mut line, mut prev) = (0usize, 1usize, b' ');
    while i < text.len() {
        let c = text[i];
        if is_word_byte(c) && !c.is_ascii_digit() {
            let len = text[i..].iter().take_while(|&&b| is_word_byte(b)).count();
            n.word(&text[i..i + len]);
            i += len;
            prev = b'a';
            continue;
        }
        let before_template = std::mem::take(&mut n.before_template);
        match c {
            b'\n' => line += 1,
            _ if c.is_ascii_whitespace() => n.before_template = before_template,
            b'(' | b'[' | b'{' => n.open(false, line, max),
            b'<' if before_template => n.open(true, line, max),
            b')' | b']' | b'}' => n.close(c == b'}'),
            _ => n.other(c, prev),
        }
        if c == b'\n' {
            n.before_template = before_template;
        }
        prev = c;
        i += 1;
    }
    match n.first_over {
        Some(line) => Err(refuse(format!(
            "the shader nests {} levels deep (first past the limit on line {line}); blocks, \
             `else if` branches, brackets, calls and template lists each count a level, and \
             the limit is {max} (max_nesting_depth). A `switch` replaces a long `else if` chain",
            n.deepest
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(wgsl: &str) -> u32 {
        match check_nesting(&strip_comments(wgsl), 0) {
            Ok(()) => 0,
            Err(e) => {
                let m = e.to_string();
                let rest = &m[m.find("nests ").unwrap() + 6..];
                rest[..rest.find(' ').unwrap()].parse().unwrap()
            }
        }
    }

    #[test]
    fn comments_are_blanked_and_may_nest() {
        let s = "a /* b /* c */ { */ d // e {\nf";
        let out = String::from_utf8(strip_comments(s)).unwrap();
        assert_eq!(out.len(), s.len());
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["a", "d", "f"]);
        assert_eq!(out.find('\n'), s.find('\n'));
        assert_eq!(depth("/* { /* { */ { */ fn f() {}"), 1);
        assert_eq!(depth("// {{{{\nfn f() {}"), 1);
        // An unterminated comment runs to the end.
        assert_eq!(depth("fn f() {} /* {{{{"), 1);
        // A line comment ends at any WGSL line break, as in naga's lexer.
        for line_break in ["\r", "\u{0b}", "\u{0c}", "\u{85}", "\u{2028}", "\u{2029}"] {
            assert_eq!(depth(&format!("// x{line_break}fn f() {{ {{ }} }}")), 2);
        }
    }

    #[test]
    fn every_kind_of_bracket_counts() {
        assert_eq!(depth("fn f() { { x = (a[b(c)]); } }"), 5);
        assert_eq!(depth("var<private> v: array<array<u32, 2>, 2>;"), 2);
        // A comparison is not a template list; an arrow closes none.
        assert_eq!(
            depth("fn f(p: ptr<function, u32>) -> u32 { return a < b; }"),
            2
        );
        assert_eq!(depth("fn f() { let t = vec2 < 3; { } }"), 2);
    }

    #[test]
    fn else_if_chains_nest_but_separate_ifs_do_not() {
        let chain = "fn f() { if a { } else if b { } else if c { } else { } }";
        assert_eq!(depth(chain), 4);
        let separate = "fn f() { if a { } else if b { } x = 1; if c { } else if d { } }";
        assert_eq!(depth(separate), 3);
        let block_after = "fn f() { if a { } else if b { } { } }";
        assert_eq!(depth(block_after), 3);
        let nested = "fn f() { if a { } else if b { if c { } else if d { } } }";
        assert_eq!(depth(nested), 5);
        // Any blank space separates `else` from `if`.
        for blank in ["\u{0b}", "\u{85}", "\u{200e}", "\u{2028}", "/* */", "//\r"] {
            let chain = format!("fn f() {{ if a {{ }} else{blank}if b {{ }} }}");
            assert_eq!(depth(&chain), 3, "{blank:?}");
        }
        let long: String = (0..1000)
            .map(|k| format!(" else if x == {k} {{ }}"))
            .collect();
        assert_eq!(depth(&format!("fn f() {{ if a {{ }}{long} }}")), 1002);
    }
}
