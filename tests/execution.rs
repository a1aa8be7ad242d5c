//! GIVEN the fixture warehouse on the BigQuery emulator, WHEN each golden case's
//! create query runs, THEN the segment table holds exactly the expected ids; and
//! a cronjob refresh at the same instant leaves it unchanged.

use segments_core::Target;
use segments_tests::bq_check;
use segments_tests::cases::{NOW, load_all};
use segments_tests::warehouse::Warehouse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cases_select_exactly_the_expected_members() {
    let w = Warehouse::fixture("cases").await;
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let cases = load_all();
    assert!(
        cases.len() >= 90,
        "expected the full case suite, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = async {
            let r = case.render(&target, NOW)?;
            bq_check::check(&r.create_table_query)?;
            w.run(&r.create_table_query).await?;
            let got = w.members(&r.table).await?;
            let mut want = case.expect.clone();
            want.sort();
            if got != want {
                return Err(format!("members {got:?}, expected {want:?}"));
            }
            // A refresh at the same instant is a no-op.
            let cron = case.cronjob_at(&r, NOW)?;
            bq_check::check(&cron)?;
            w.run(&cron).await?;
            let again = w.members(&r.table).await?;
            if again != want {
                return Err(format!(
                    "after the cronjob refresh: {again:?}, expected {want:?}"
                ));
            }
            Ok::<(), String>(())
        }
        .await;
        match outcome {
            Ok(()) => println!("case {} ok", case.name),
            Err(e) => failures.push(format!("case {} ({}): {e}", case.name, case.about)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
