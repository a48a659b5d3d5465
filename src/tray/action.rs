//! What a tray click means, and how it is carried in a muda menu id.
//!
//! muda reports a click as the clicked item's id string. Instead of matching
//! strings at call sites, every clickable item's id is the `Display` form of
//! a [`Click`], and clicks are parsed back with `FromStr`:
//!
//! | action | id |
//! |---|---|
//! | `Command(python, start)` / `stop` / `restart` (no ARGS), `OpenLog` | `python:start` / `python:stop` / `python:restart` / `python:log` |
//! | `Run(python, 2)`: the manifest's third action | `python:action:2` |
//! | `OpenFile(path)` | `@open-file:/abs/path.yaml` |
//! | `OpenFolder`, `StartAll`, `StopAll`, `ToggleStartAtLogin`, `Quit` | `@open-folder`, `@start-all`, `@stop-all`, `@start-at-login`, `@quit` |
//!
//! `@` cannot start a backend id (`[a-z0-9][a-z0-9-]*`), so the two families
//! never collide. Informational items get ids that parse to nothing
//! ([`ItemId::info`]), so a click on them (dbusmenu delivers clicks even to
//! disabled items) is ignored.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::manifest::BackendId;
use crate::verb::Verb;

/// A user request from the tray.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Click {
    /// Start, Stop or Restart, as the socket's; the tray's carry no ARGS.
    Command(BackendId, Verb),
    OpenLog(BackendId),
    /// The manifest action at this index of the backend's `actions` (v2).
    Run(BackendId, usize),
    /// Open a manifest file (the warning entry of an invalid one).
    OpenFile(PathBuf),
    OpenFolder,
    StartAll,
    StopAll,
    /// The "Start at login" check item: write or remove the autostart entry.
    ToggleStartAtLogin,
    Quit,
}

/// A menu item's id that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("menu id {0:?} is not an action")]
pub struct ParseActionError(pub String);

impl fmt::Display for Click {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(id, verb) => write!(f, "{id}:{}", verb.word()),
            Self::OpenLog(id) => write!(f, "{id}:log"),
            Self::Run(id, n) => write!(f, "{id}:action:{n}"),
            Self::OpenFile(path) => write!(f, "@open-file:{}", path.display()),
            Self::OpenFolder => f.write_str("@open-folder"),
            Self::StartAll => f.write_str("@start-all"),
            Self::StopAll => f.write_str("@stop-all"),
            Self::ToggleStartAtLogin => f.write_str("@start-at-login"),
            Self::Quit => f.write_str("@quit"),
        }
    }
}

impl FromStr for Click {
    type Err = ParseActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseActionError(s.to_owned());
        if let Some(global) = s.strip_prefix('@') {
            return match global {
                "open-folder" => Ok(Self::OpenFolder),
                "start-all" => Ok(Self::StartAll),
                "stop-all" => Ok(Self::StopAll),
                "quit" => Ok(Self::Quit),
                "start-at-login" => Ok(Self::ToggleStartAtLogin),
                _ => match global.strip_prefix("open-file:") {
                    Some(path) if !path.is_empty() => Ok(Self::OpenFile(PathBuf::from(path))),
                    _ => Err(err()),
                },
            };
        }
        let (id, verb) = s.split_once(':').ok_or_else(err)?;
        let id = BackendId::new(id).map_err(|_| err())?;
        if let Some(verb) = Verb::from_word(verb) {
            return Ok(Self::Command(id, verb));
        }
        match verb {
            "log" => Ok(Self::OpenLog(id)),
            _ => match verb.strip_prefix("action:").map(str::parse) {
                Some(Ok(n)) => Ok(Self::Run(id, n)),
                _ => Err(err()),
            },
        }
    }
}

impl Click {
    /// The backend this action concerns, if it is about one.
    pub fn backend(&self) -> Option<&BackendId> {
        match self {
            Self::Command(id, _) | Self::OpenLog(id) | Self::Run(id, _) => Some(id),
            _ => None,
        }
    }
}

/// A muda menu id: either an encoded [`Click`] or an informational item's
/// unique, non-parsing id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId(String);

impl ItemId {
    /// The id of an item that does something.
    pub fn action(action: &Click) -> Self {
        Self(action.to_string())
    }

    /// The id of an informational item; `#` never parses as an action.
    pub fn info(path: &str) -> Self {
        Self(format!("#{path}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The action this id encodes, if any.
    pub fn to_action(&self) -> Option<Click> {
        self.0.parse().ok()
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> BackendId {
        BackendId::new(s).unwrap()
    }

    #[test]
    fn every_action_round_trips_through_its_menu_id() {
        let actions = [
            Click::Command(id("python"), Verb::start()),
            Click::Command(id("python"), Verb::Stop),
            Click::Command(id("go-2"), Verb::restart()),
            Click::OpenLog(id("python")),
            Click::Run(id("python"), 3),
            Click::OpenFile(PathBuf::from("/home/me/backends/broken: yes.yaml")),
            Click::OpenFolder,
            Click::StartAll,
            Click::StopAll,
            Click::ToggleStartAtLogin,
            Click::Quit,
        ];
        for action in actions {
            let text = action.to_string();
            assert_eq!(text.parse::<Click>(), Ok(action.clone()), "{text}");
            assert_eq!(ItemId::action(&action).to_action(), Some(action));
        }
    }

    #[test]
    fn ids_use_the_documented_format() {
        assert_eq!(
            Click::Command(id("python"), Verb::restart()).to_string(),
            "python:restart"
        );
        assert_eq!(Click::Quit.to_string(), "@quit");
    }

    #[test]
    fn a_backend_called_like_a_global_action_does_not_collide() {
        assert_eq!(
            "quit:stop".parse::<Click>(),
            Ok(Click::Command(id("quit"), Verb::Stop))
        );
        assert_eq!(
            "file:start".parse::<Click>(),
            Ok(Click::Command(id("file"), Verb::start()))
        );
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "python",
            "python:",
            "python:explode",
            "Python:start",
            ":start",
            "@",
            "@open-file:",
            "@reboot",
            "#python/status",
        ] {
            assert!(bad.parse::<Click>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(ItemId::info("python/status").to_action(), None);
    }
}
