//! Flags, parsed by hand: `--flag VALUE` or `--flag=VALUE`, switches, and positional words.

/// The arguments of one command, consumed flag by flag; [`Args::finish`] rejects leftovers.
pub struct Args {
    words: Vec<String>,
}

impl Args {
    pub fn new(words: Vec<String>) -> Args {
        // Split --flag=value into two words.
        let mut split = Vec::with_capacity(words.len());
        for word in words {
            match word.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    split.push(flag.to_string());
                    split.push(value.to_string());
                }
                _ => split.push(word),
            }
        }
        Args { words: split }
    }

    /// Removes `--name VALUE` and returns VALUE.
    pub fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        let Some(at) = self.words.iter().position(|word| word == name) else {
            return Ok(None);
        };
        if at + 1 >= self.words.len() {
            return Err(format!("{name} needs a value"));
        }
        let value = self.words.remove(at + 1);
        self.words.remove(at);
        Ok(Some(value))
    }

    /// Removes `--name` and says whether it was there.
    pub fn switch(&mut self, name: &str) -> bool {
        match self.words.iter().position(|word| word == name) {
            Some(at) => {
                self.words.remove(at);
                true
            }
            None => false,
        }
    }

    /// `--name N` within `min..=max`, or `default`.
    pub fn number(&mut self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
        let Some(text) = self.value(name)? else {
            return Ok(default);
        };
        let number: u64 = text
            .parse()
            .map_err(|_| format!("{name}: not a number: {text}"))?;
        if !(min..=max).contains(&number) {
            return Err(format!("{name}: {number} is not in {min}..={max}"));
        }
        Ok(number)
    }

    /// The remaining words, which must not look like flags.
    pub fn finish(self) -> Result<Vec<String>, String> {
        if let Some(flag) = self.words.iter().find(|word| word.starts_with("--")) {
            return Err(format!("unknown flag {flag}"));
        }
        Ok(self.words)
    }
}
