//! Quotas, retention and garbage collection, from the rows alone.

use suanli_proto::{Hash, JobLimits, JobSpec, Requirements};

use super::*;
use crate::Admission;

const GIB: u64 = 1 << 30;

fn open(dir: &tempfile::TempDir) -> Ledger {
    Ledger::open(&dir.path().join("ledger.db")).unwrap()
}

fn submit(l: &mut Ledger, tenant: &str, module: Hash, input: Hash, now_ms: u64) -> u64 {
    let spec = JobSpec {
        module,
        input,
        requirements: Requirements::default(),
        limits: JobLimits::default(),
        max_attempts: 1,
    };
    match l.submit(tenant, &spec, now_ms).unwrap() {
        Admission::Accepted(id) => id,
        Admission::OverCredit(m) => panic!("{m}"),
    }
}

#[test]
fn an_upload_past_the_quota_is_refused_with_the_numbers_and_another_tenant_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
    assert_eq!(
        l.record_blob(&a, 6000, Some("alice"), 10_000, 1).unwrap(),
        Stored::Stored
    );
    let refused = l.record_blob(&b, 6000, Some("alice"), 10_000, 2).unwrap();
    let Stored::OverQuota(r) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!((r.used, r.adding, r.quota), (6000, 6000, 10_000));
    assert!(r.to_string().contains("stores 6000 bytes"), "{r}");
    assert_eq!(
        l.upload_refusal("alice", &b, 6000, 10_000).unwrap(),
        Some(r)
    );
    // Nothing was recorded for the refused upload.
    assert!(!l.has_blob_row(&b).unwrap());
    // Re-uploading a blob alice holds adds nothing; bob has his own quota.
    assert_eq!(l.upload_refusal("alice", &a, 6000, 10_000).unwrap(), None);
    assert_eq!(
        l.record_blob(&b, 6000, Some("bob"), 10_000, 3).unwrap(),
        Stored::Stored
    );
    // A blob two tenants hold counts in full for each.
    assert_eq!(
        l.record_blob(&a, 6000, Some("bob"), GIB, 4).unwrap(),
        Stored::Stored
    );
    assert_eq!(l.storage_used("bob").unwrap(), 12_000);
    // A node's upload (an output) is refused nobody and counts for nobody
    // until it is granted.
    assert_eq!(
        l.record_blob(&Hash::of(b"o"), 50_000, None, 1, 5).unwrap(),
        Stored::Stored
    );
    assert_eq!(l.storage_used("alice").unwrap(), 6000);
    // An operator's quota overrides the default.
    l.set_storage_quota("alice", Some(20_000)).unwrap();
    assert_eq!(l.storage_quota("alice", 10_000).unwrap(), 20_000);
    assert_eq!(
        l.record_blob(&b, 6000, Some("alice"), 10_000, 6).unwrap(),
        Stored::Stored
    );
    l.set_storage_quota("alice", None).unwrap();
    assert_eq!(l.storage_quota("alice", 10_000).unwrap(), 10_000);
}

#[test]
fn tiny_blobs_count_at_least_a_block_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    for (n, now) in [(b"1", 1), (b"2", 2)] {
        assert_eq!(
            l.record_blob(&Hash::of(n), 1, Some("carol"), 10_000, now)
                .unwrap(),
            Stored::Stored
        );
    }
    assert_eq!(l.storage_used("carol").unwrap(), 2 * MIN_BLOB_CHARGE);
    let refused = l
        .record_blob(&Hash::of(b"3"), 1, Some("carol"), 10_000, 3)
        .unwrap();
    let Stored::OverQuota(r) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!((r.used, r.adding), (8192, MIN_BLOB_CHARGE));
}

#[test]
fn log_bytes_count_against_the_jobs_tenant_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (m, i) = (Hash::of(b"m"), Hash::of(b"i"));
    // 100-byte blobs count MIN_BLOB_CHARGE (4096) each: 8192 together.
    l.record_blob(&m, 100, Some("alice"), 20_000, 1).unwrap();
    l.record_blob(&i, 100, Some("alice"), 20_000, 1).unwrap();
    let job = submit(&mut l, "alice", m, i, 1);
    assert_eq!(l.reserve_log(job, 5000, 20_000).unwrap(), Stored::Stored);
    assert_eq!(l.log_reserved(job).unwrap(), 5000);
    assert_eq!(l.storage_used("alice").unwrap(), 13_192);
    let Stored::OverQuota(r) = l.reserve_log(job, 15_000, 20_000).unwrap() else {
        panic!("a log past the quota was counted")
    };
    assert_eq!((r.used, r.adding, r.quota), (13_192, 10_000, 20_000));
    assert_eq!(l.log_reserved(job).unwrap(), 5000);
    // Not expired while the job is live; released once it finished before the cutoff.
    assert!(!l.log_expired(job, 10).unwrap());
    l.cancel(job, 5).unwrap();
    assert!(!l.log_expired(job, 5).unwrap());
    assert!(l.log_expired(job, 6).unwrap());
    assert_eq!(l.expired_logs(6, 10).unwrap(), vec![job]);
    l.release_log(job, 7).unwrap();
    assert!(l.expired_logs(6, 10).unwrap().is_empty());
    assert_eq!(l.storage_used("alice").unwrap(), 8192);
}

#[test]
fn retention_keeps_blobs_of_live_and_recent_jobs_and_gc_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let [m, i1, i2, stray] = [b"m", b"1", b"2", b"s"].map(|b| Hash::of(b));
    for h in [&m, &i1, &i2, &stray] {
        l.record_blob(h, 10, Some("alice"), GIB, 100).unwrap();
    }
    let done = submit(&mut l, "alice", m, i1, 100);
    l.cancel(done, 200).unwrap();
    let live = submit(&mut l, "alice", m, i2, 100);
    // Cutoff 150: the stray grant (100) expires; the module and both inputs
    // are needed by a job finished at 200 or one still queued.
    assert_eq!(l.expire_grants(150).unwrap(), 1);
    assert!(l.blob_referenced(&m).unwrap());
    assert!(!l.blob_referenced(&stray).unwrap());
    // Orphans stored at or after the grace cutoff stay (a node's output
    // waits for its result there).
    assert!(l.unreferenced_blobs(100, 10).unwrap().is_empty());
    assert_eq!(l.unreferenced_blobs(101, 10).unwrap(), vec![stray]);
    assert_eq!(l.forget_blob(&stray, 101).unwrap(), Some(10));
    assert_eq!(
        l.forget_blob(&m, 101).unwrap(),
        None,
        "a referenced blob was forgotten"
    );
    // Past the finished job's retention only the live job's blobs are kept.
    assert_eq!(l.expire_grants(300).unwrap(), 1);
    assert_eq!(l.unreferenced_blobs(301, 10).unwrap(), vec![i1]);
    l.cancel(live, 400).unwrap();
    assert_eq!(l.expire_grants(500).unwrap(), 2);
    let mut left = l.unreferenced_blobs(501, 10).unwrap();
    left.sort_by_key(|h| h.0);
    let mut want = vec![m, i1, i2];
    want.sort_by_key(|h| h.0);
    assert_eq!(left, want);
    // Jobs stay forever, and the ledger's invariants hold.
    assert!(l.job(done).unwrap().is_some());
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_file_without_a_row_is_adopted_when_referenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let h = Hash::of(b"old");
    l.grant_blob(&h, "alice").unwrap();
    assert!(!l.has_blob_row(&h).unwrap());
    assert!(l.blob_referenced(&h).unwrap());
    l.adopt_blob(&h, 42, 1).unwrap();
    assert!(l.has_blob_row(&h).unwrap());
    assert_eq!(l.storage_used("alice").unwrap(), MIN_BLOB_CHARGE);
}

#[test]
fn old_disconnected_node_sessions_without_attempts_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let token = [7; 32];
    l.add_token(&token, suanli_proto::Role::Node, "prov", 0)
        .unwrap();
    let info = suanli_proto::NodeInfo {
        gpu: suanli_proto::GpuInfo {
            name: "Test GPU".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: "none".into(),
            metering: suanli_proto::Metering::Timestamp,
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            max_compute_workgroups_per_dimension: 65535,
            features: vec![],
        },
        slots: 1,
        caps: suanli_proto::NodeCaps::default(),
        public_key: suanli_proto::ReceiptSigner::from_seed(&[7; 32]).public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    let session = |l: &mut Ledger, now| match l.register_node(&token, "prov", &info, now) {
        Ok(crate::Registration::Registered(s)) => s.id,
        other => panic!("{other:?}"),
    };
    let (old, live, ran) = (
        session(&mut l, 10),
        session(&mut l, 10),
        session(&mut l, 10),
    );
    let young = session(&mut l, 1000);
    let (m, i) = (Hash::of(b"m"), Hash::of(b"i"));
    let job = submit(&mut l, "alice", m, i, 10);
    assert!(matches!(
        l.start_attempt(job, ran, 20).unwrap(),
        crate::Start::Started { .. }
    ));
    assert_eq!(l.prune_node_sessions(500, &[live]).unwrap(), 1);
    // The session an attempt ran on, the live one and the young one stay.
    for id in [live, ran, young] {
        assert!(l.node_class(id).unwrap().is_some(), "session {id} pruned");
    }
    assert!(l.node_class(old).unwrap().is_none());
}
