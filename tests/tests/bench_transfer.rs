//! `suanli bench --transfer`: blobs through a real coordinator on loopback
//! beside a raw quinn stream. Figures are not asserted (they belong to the
//! benchmark), only that each size was moved both ways and the ratios are
//! the ones its timings give.

use suanli_e2e::{ok_json, suanli};

#[test]
fn the_transfer_benchmark_moves_each_size_both_ways() {
    let report = ok_json(&suanli(
        &[
            "bench",
            "--transfer",
            "--transfer-sizes",
            "64KiB,2MiB",
            "--runs",
            "2",
            "--json",
        ],
        &[],
    ));
    assert_eq!(report["runs"], 2);
    let sizes = report["sizes"].as_array().unwrap();
    let bytes: Vec<u64> = sizes.iter().map(|s| s["bytes"].as_u64().unwrap()).collect();
    assert_eq!(bytes, [64 << 10, 2 << 20]);
    for s in sizes {
        let ns = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
        for k in ["put_ns", "get_ns", "raw_put_ns", "raw_get_ns"] {
            assert!(ns(k) > 0, "{k} in {s}");
        }
        let put_ratio = s["put_ratio"].as_f64().unwrap();
        assert!((put_ratio - ns("raw_put_ns") as f64 / ns("put_ns") as f64).abs() < 1e-9);
        let get_ratio = s["get_ratio"].as_f64().unwrap();
        assert!((get_ratio - ns("raw_get_ns") as f64 / ns("get_ns") as f64).abs() < 1e-9);
    }
}
