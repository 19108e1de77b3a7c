//! The call log both simulators ([`crate::fake`] and [`crate::fake_vmcompute`]) keep.

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The export (computecore or vmcompute).
    pub export: &'static str,
    /// The handle the call was made on (0 when none).
    pub handle: usize,
    /// The main argument, rendered: for computecore the id, document, query, options or
    /// the wait timeout; for vmcompute the documents, ids and paths (descriptors as
    /// `path@guid`).
    pub arg: String,
}

/// Every call a simulator has seen, in order.
#[derive(Debug, Default)]
pub(crate) struct CallLog(Vec<Call>);

impl CallLog {
    /// Appends a call.
    pub(crate) fn record(&mut self, export: &'static str, handle: usize, arg: impl Into<String>) {
        self.0.push(Call {
            export,
            handle,
            arg: arg.into(),
        });
    }

    /// Every call so far.
    pub(crate) fn all(&self) -> Vec<Call> {
        self.0.clone()
    }

    /// The exports called so far, in order.
    pub(crate) fn exports(&self) -> Vec<&'static str> {
        self.0.iter().map(|c| c.export).collect()
    }

    /// The recorded calls of one export.
    pub(crate) fn of(&self, export: &str) -> Vec<Call> {
        self.0
            .iter()
            .filter(|c| c.export == export)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_filters_by_export() {
        let mut log = CallLog::default();
        log.record("A", 1, "x");
        log.record("B", 0, String::from("y"));
        log.record("A", 2, "z");
        assert_eq!(log.exports(), ["A", "B", "A"]);
        assert_eq!(
            log.of("A").iter().map(|c| c.handle).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            log.all()[1],
            Call {
                export: "B",
                handle: 0,
                arg: "y".into()
            }
        );
        assert!(log.of("C").is_empty());
    }
}
