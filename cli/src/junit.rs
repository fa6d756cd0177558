//! The JUnit XML report of `run`, for CI systems to show per-job results.

use picasso_simulator::suite::JobResult;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;

/// Writes one test suite, one test case per job (`scenario::policy`).
pub(crate) fn write(path: &Path, results: &[JobResult]) -> std::io::Result<()> {
    std::fs::write(path, render(results))
}

/// The report as XML text.
pub(crate) fn render(results: &[JobResult]) -> String {
    let mut report = Report::new("picasso-sim run");
    let mut suite = TestSuite::new("picasso-sim");
    for r in results {
        let status = if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let mut message: Vec<String> = r.violations.clone();
            message.extend(r.error.clone());
            message.extend(r.snapshot.as_ref().and_then(|s| s.failure()));
            status.set_message(message.join("; "));
            status.set_description(r.transcript.clone());
            status
        };
        let mut case = TestCase::new(format!("{}::{}", r.job.name, r.job.policy.name()), status);
        case.set_classname(r.job.source.clone());
        case.set_time(r.wall);
        if r.passed() && !r.violations.is_empty() {
            case.set_system_out(format!(
                "expected defects of this policy:\n{}",
                r.violations.join("\n")
            ));
        }
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot render the report: {e} -->"))
}
