//! Worker output made fit for a message a client reads: no terminal escape
//! sequences (colours, cursor moves, window titles) and no control characters
//! other than newline and tab.

/// `text` without ANSI escape sequences and control characters (newlines and
/// tabs are kept).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS and the like: up to BEL or ESC \ (string terminator).
                Some(']' | 'P' | '^' | '_' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Two-byte sequences (ESC 7, ESC c, ESC ( B ...): intermediates
                // then one final byte.
                Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
                    chars.next();
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_controls_go_text_stays() {
        let coloured = "\u{1b}[2m2024-01-01T00:00:00Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[1;38;5;196mdisk\u{1b}[0m full";
        assert_eq!(plain(coloured), "2024-01-01T00:00:00Z  WARN disk full");
        assert_eq!(plain("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(
            plain("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(plain("a\u{1b}(Bb\u{1b}7c"), "abc");
        assert_eq!(
            plain("bell\u{7} cr\r del\u{7f} c1\u{9b}31m"),
            "bell cr del c131m"
        );
        assert_eq!(
            plain("line 1\n\tline 2 ünïcødé"),
            "line 1\n\tline 2 ünïcødé"
        );
        assert_eq!(plain("cut off \u{1b}[3"), "cut off ");
        assert!(!plain("\u{1b}\u{1b}[31m\u{1b}").contains('\u{1b}'));
    }
}
