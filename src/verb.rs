//! What a user asks of one backend, as one typed value.
//!
//! A [`Verb`] is made where the user asks (a CLI subcommand, a tray click,
//! a socket request, a notification's button) and travels unchanged to the
//! backend's job, which is the only place that decides what it does. A new
//! verb is a variant here, its wire spelling in `control::protocol`, and
//! its arm in the job; nothing in between looks inside it.
//!
//! This module imports nothing of berth's: everybody may import it.

/// One command on one backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Start it. `args` (v2) are appended to the manifest's for this run
    /// and the automatic restarts that follow it; none: the manifest's
    /// `args` alone.
    Start { args: Vec<String> },
    /// Stop it: the reply comes once its process group is gone; in backoff,
    /// the pending restart is cancelled.
    Stop,
    /// Stop it if needed, then start it with its current definition and
    /// these `args` (v2), like `Start`.
    Restart { args: Vec<String> },
    /// Read the feed of its `update` section and say what it offers (v3):
    /// nothing is installed; the status's `update` shows the answer.
    CheckUpdate,
    /// Install the version its feed offers and switch to it (v3): a
    /// stopped backend runs it at its next start, a running one is
    /// restarted into it. Answered once it runs, or is installed.
    Update,
    /// Go back to the version kept before the installed one (v3).
    Rollback,
}

impl Verb {
    /// Start with the manifest's `args` alone.
    pub fn start() -> Self {
        Self::Start { args: Vec::new() }
    }

    /// Restart with the manifest's `args` alone.
    pub fn restart() -> Self {
        Self::Restart { args: Vec::new() }
    }

    /// The word a user types and reads: `start`, `stop`, `restart`,
    /// `check-update`, `update`, `rollback` (also
    /// the word in "cannot start while ..." and in the tray's menu ids).
    pub fn word(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::Stop => "stop",
            Self::Restart { .. } => "restart",
            Self::CheckUpdate => "check-update",
            Self::Update => "update",
            Self::Rollback => "rollback",
        }
    }

    /// The ARGS it carries for the new run; none for Stop.
    pub fn args(&self) -> &[String] {
        match self {
            Self::Start { args } | Self::Restart { args } => args,
            Self::Stop | Self::CheckUpdate | Self::Update | Self::Rollback => &[],
        }
    }

    /// The verb without ARGS that `word` names (the tray's menu ids).
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "start" => Some(Self::start()),
            "stop" => Some(Self::Stop),
            "restart" => Some(Self::restart()),
            "check-update" => Some(Self::CheckUpdate),
            "update" => Some(Self::Update),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_names_its_verb() {
        for verb in [
            Verb::start(),
            Verb::Stop,
            Verb::restart(),
            Verb::CheckUpdate,
            Verb::Update,
            Verb::Rollback,
        ] {
            assert_eq!(Verb::from_word(verb.word()), Some(verb));
        }
        assert_eq!(Verb::from_word("log"), None);
    }
}
