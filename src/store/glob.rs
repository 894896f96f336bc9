//! Redis-style glob matching for SCAN's MATCH: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
//!
//! Works on bytes. Every pattern element except `*` consumes exactly one byte, so one
//! backtracking point (the most recent `*`) is enough: when a later element fails, the last star
//! swallows one more byte and matching resumes after it. That bounds the work by
//! `pattern.len() * text.len()`, with no recursion, whatever the client sends.

/// True if `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut p = 0;
    let mut t = 0;
    // (pattern index just after the star, text index the star is matched up to)
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    // Consecutive stars act as one.
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    let (matched, next) = match_class(pattern, p, text[t]);
                    if matched {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                literal => {
                    if literal == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last star take one more byte, or fail.
        match star {
            Some((after_star, matched_to)) => {
                p = after_star;
                t = matched_to + 1;
                star = Some((after_star, matched_to + 1));
            }
            None => return false,
        }
    }
    // Text used up: only stars may remain.
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Match one byte against the class starting at `pattern[open] == b'['`. Returns whether it
/// matched and the index just after the class. An unterminated class runs to the end of the
/// pattern (as Redis does).
fn match_class(pattern: &[u8], open: usize, byte: u8) -> (bool, usize) {
    let mut i = open + 1;
    let negate = i < pattern.len() && pattern[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == byte;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (mut low, mut high) = (pattern[i], pattern[i + 2]);
            if low > high {
                std::mem::swap(&mut low, &mut high);
            }
            matched |= low <= byte && byte <= high;
            i += 3;
        } else {
            matched |= pattern[i] == byte;
            i += 1;
        }
    }
    let next = if i < pattern.len() { i + 1 } else { i };
    (matched != negate, next)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "hllo", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("key:*", "key:12", true),
            ("key:*", "kex:12", false),
            ("*:1?", "key:12", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxcxxb", false),
            ("a*", "a", true),
            ("a**", "a", true),
            ("[abc", "b", true),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} vs {text}"
            );
        }
    }
}
