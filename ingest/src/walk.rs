//! `WalkGuard`: what keeps every paged walk (cursor, `startIndex` or `before`/`page`) finite
//! when the server misbehaves: a position seen before in the same walk (cursors A→B→A, a
//! server ignoring `startIndex` or `before`), more pages than any real listing has, or an
//! endless run of empty pages with fresh cursors. Each ends the walk with `Protocol` at once
//! instead of looping until the run's deadline.

use std::collections::HashSet;

use crate::error::{IngestError, Result};

/// Pages one walk may read. At Slack's page sizes (200 users, 1,000 access-log entries, 100
/// SCIM resources) this is tens of millions of rows, far beyond any organisation, yet small
/// enough that a server that never stops is caught in minutes rather than never.
pub(crate) const MAX_PAGES: u64 = 200_000;

/// Empty pages in a row a walk follows. Slack documents that a page may hold fewer items than
/// asked for, even none, while more follow; a thousand in a row is a server that only ever
/// hands out new cursors.
pub(crate) const MAX_EMPTY_PAGES_IN_A_ROW: u64 = 1_000;

/// The state of one walk's guard: the positions it visited and its page counts.
#[derive(Debug)]
pub(crate) struct WalkGuard {
    method: &'static str,
    seen: HashSet<String>,
    pages: u64,
    empty_in_a_row: u64,
    max_pages: u64,
    max_empty: u64,
}

impl WalkGuard {
    pub(crate) fn new(method: &'static str) -> WalkGuard {
        WalkGuard::with_limits(method, MAX_PAGES, MAX_EMPTY_PAGES_IN_A_ROW)
    }

    pub(crate) fn with_limits(method: &'static str, max_pages: u64, max_empty: u64) -> WalkGuard {
        WalkGuard { method, seen: HashSet::new(), pages: 0, empty_in_a_row: 0, max_pages, max_empty }
    }

    /// A cursor walk: records a page of `rows` rows and returns the cursor to follow next
    /// (`None` = the walk is over; an empty cursor means the same), or `Protocol` when that
    /// cursor was already followed in this walk or a cap is reached.
    pub(crate) fn next_cursor(&mut self, rows: usize, next: Option<String>) -> Result<Option<String>> {
        self.page(rows)?;
        match next.filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(cursor) => {
                if !self.seen.insert(cursor.clone()) {
                    return Err(self.fail(format!(
                        "the server handed out a cursor it had already given in this listing (after {} \
                         pages); stopping instead of looping",
                        self.pages
                    )));
                }
                Ok(Some(cursor))
            }
        }
    }

    /// A walk without cursors: `position` identifies what a page request asks for or what a
    /// page holds (`before`/`page`, the first resource of a SCIM page). Visiting one twice
    /// means the server ignores the paging parameter.
    pub(crate) fn visit(&mut self, position: String) -> Result<()> {
        if !self.seen.insert(position) {
            return Err(self.fail(format!(
                "the server returned a page already read in this listing (after {} pages); it seems to \
                 ignore the paging parameters, stopping instead of looping",
                self.pages
            )));
        }
        Ok(())
    }

    /// Counts one page of `rows` rows against the caps.
    pub(crate) fn page(&mut self, rows: usize) -> Result<()> {
        self.pages += 1;
        self.empty_in_a_row = if rows == 0 { self.empty_in_a_row + 1 } else { 0 };
        if self.pages > self.max_pages {
            return Err(self.fail(format!(
                "more than {} pages in one listing; stopping (no organisation has that many rows)",
                self.max_pages
            )));
        }
        if self.empty_in_a_row > self.max_empty {
            return Err(self.fail(format!(
                "{} empty pages in a row, each with a new cursor; stopping instead of following them",
                self.empty_in_a_row
            )));
        }
        Ok(())
    }

    fn fail(&self, message: String) -> IngestError {
        IngestError::Protocol { method: self.method.to_owned(), message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn a_cursor_cycle_is_caught_on_its_first_repeat() {
        let mut g = WalkGuard::new("users.list");
        assert_eq!(g.next_cursor(5, cursor("A")).unwrap(), cursor("A"));
        assert_eq!(g.next_cursor(5, cursor("B")).unwrap(), cursor("B"));
        let err = g.next_cursor(5, cursor("A")).unwrap_err();
        assert!(matches!(err, IngestError::Protocol { .. }), "{err}");
        assert!(err.to_string().starts_with("users.list: the server handed out a cursor"), "{err}");
    }

    #[test]
    fn empty_cursor_ends_the_walk() {
        let mut g = WalkGuard::new("m");
        assert_eq!(g.next_cursor(0, Some(String::new())).unwrap(), None);
        assert_eq!(g.next_cursor(0, None).unwrap(), None);
    }

    #[test]
    fn caps_on_pages_and_on_empty_pages_in_a_row() {
        let mut g = WalkGuard::with_limits("m", 10, 3);
        for i in 0..3 {
            g.next_cursor(0, Some(format!("e{i}"))).unwrap();
        }
        g.next_cursor(1, cursor("full")).unwrap();
        for i in 0..3 {
            g.next_cursor(0, Some(format!("f{i}"))).unwrap();
        }
        let err = g.next_cursor(0, cursor("g")).unwrap_err();
        assert!(err.to_string().contains("4 empty pages in a row"), "{err}");

        let mut g = WalkGuard::with_limits("m", 3, 3);
        for i in 0..3 {
            g.visit(format!("p{i}")).unwrap();
            g.page(1).unwrap();
        }
        assert!(g.page(1).unwrap_err().to_string().contains("more than 3 pages"));
    }

    #[test]
    fn a_position_visited_twice_is_a_loop() {
        let mut g = WalkGuard::new("scim.Users");
        g.visit("U1".into()).unwrap();
        g.visit("U2".into()).unwrap();
        assert!(matches!(g.visit("U1".into()), Err(IngestError::Protocol { .. })));
    }
}
