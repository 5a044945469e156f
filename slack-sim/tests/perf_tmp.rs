use chrono::NaiveDate;
use lastseen_slack_sim::{Org, OrgSpec, Plan};
use std::time::Instant;
#[test]
#[ignore]
fn perf() {
    let today = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
    let t = Instant::now();
    let org = Org::generate(&OrgSpec::new(1, 500_000, Plan::Pro, today, 365));
    println!("generate {:?}", t.elapsed());
    let t = Instant::now();
    let gt = org.ground_truth(today.and_hms_opt(23, 59, 59).unwrap().and_utc());
    println!("ground truth {:?} dormant30 {}", t.elapsed(), gt.dormant(30).len());
}
