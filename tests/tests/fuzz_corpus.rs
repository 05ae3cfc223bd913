//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same code the `cargo fuzz` targets run, so every input the fuzzers kept —
//! seeds, interesting finds and fixed crashes — is checked on every CI run,
//! with or without a nightly toolchain.

use std::path::PathBuf;
use std::time::Duration;

use suanli_e2e::{guest_wasm, runtime, workspace_root};
use suanli_sandbox::JobLimits;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace_root().join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

#[test]
fn the_proto_decode_corpus_replays_cleanly() {
    for (path, bytes) in corpus("proto_decode") {
        eprintln!("{}", path.display());
        suanli_proto::fuzzing::decode_everything(&bytes);
    }
}

#[test]
fn the_gpu_calls_corpus_replays_cleanly() {
    let files = corpus("gpu_calls");
    let rt = runtime();
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        suanli_gpu::fuzzing::run_calls(&rt.slot, &bytes);
    }
    // The slot still works.
    drop(rt);
    let input = vector_add::reference::encode_default_problem();
    let r = suanli_e2e::run_job(&guest_wasm("vector_add"), &input, &JobLimits::default());
    assert!(r.output == vector_add::reference::run(&input).unwrap());
}

#[test]
fn the_sandbox_load_corpus_replays_cleanly() {
    let limits = JobLimits {
        timeout: Duration::from_secs(1),
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    };
    for (path, bytes) in corpus("sandbox_load") {
        eprintln!("{}", path.display());
        let rt = runtime();
        rt.sandbox
            .run(&rt.slot, &bytes, b"", &limits)
            .expect("the slot is free");
    }
}

/// Writes the seed corpora (run once, by hand, with `--ignored`; the
/// output is committed).
#[test]
#[ignore]
fn write_seed_corpus() {
    use suanli_proto::{
        Assignment, ErrorCode, FRAME_HEADER_BYTES, FromNode, Hash, Hello, JobSpec,
        PROTOCOL_VERSION, Request, Requirements, Response, Role, ToNode, encode, usage,
    };
    let root = workspace_root().join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let payload = |frame: Vec<u8>| frame[FRAME_HEADER_BYTES..].to_vec();
    let hash = Hash::of(b"seed");
    let spec = JobSpec {
        module: hash,
        input: hash,
        requirements: Requirements::default(),
        limits: suanli_proto::JobLimits::default(),
        max_attempts: 3,
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "hello",
            encode(&Hello {
                version: PROTOCOL_VERSION,
                role: Role::Tenant,
                token: "sl_0123".into(),
            })
            .unwrap(),
        ),
        ("submit", encode(&Request::Submit(spec.clone())).unwrap()),
        (
            "usage",
            encode(&Request::Usage(usage::UsageQuery::default())).unwrap(),
        ),
        (
            "put-blob",
            encode(&Request::PutBlob { hash, size: 42 }).unwrap(),
        ),
        (
            "run",
            encode(&ToNode::Run(Assignment {
                job: 1,
                attempt: 1,
                spec,
            }))
            .unwrap(),
        ),
        (
            "log",
            encode(&FromNode::Log {
                job: 7,
                attempt: 1,
                data: b"hello".to_vec(),
            })
            .unwrap(),
        ),
        (
            "error",
            encode(&Response::Error {
                code: ErrorCode::TooLarge,
                message: "x".into(),
            })
            .unwrap(),
        ),
    ];
    let mut stream = Vec::new();
    for (name, frame) in &seeds {
        write(
            "proto_decode",
            &format!("{name}.bin"),
            &payload(frame.clone()),
        );
        stream.extend_from_slice(frame);
    }
    write("proto_decode", "stream.bin", &stream);
    write(
        "proto_decode",
        "huge-length.bin",
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2],
    );

    // GPU calls: buffer, shader, pipeline, write, dispatch, read, drops.
    let gpu_seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "dispatch",
            vec![
                0, 0, 0, 64, 0, 0, // buffer 256 bytes, storage
                4, 0, // shader 0
                6, 2, 0, // pipeline of shader 2, "main"
                1, 1, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, // write 8 bytes to buffer 1
                7, 3, 1, 1, 0, 1, 1, 1, // dispatch pipeline 3, bindings [1], [1,1,1]
                2, 1, 0, 0, 0, 16, // read 16 bytes of buffer 1
                9, 3, 8, 2, 3, 1, // drop pipeline, shader, buffer
            ],
        ),
        (
            "bad-shader",
            vec![
                5, 0, 0, 12, b'f', b'n', b' ', b'(', 0xff, 0, 1, 2, 3, 4, 5, 6,
            ],
        ),
        (
            "stale-handles",
            vec![3, 9, 2, 9, 0, 0, 0, 4, 7, 9, 5, 1, 2, 3, 4, 5, 8, 9],
        ),
        (
            "uniform",
            vec![0, 0, 0, 4, 0, 1, 4, 3, 6, 2, 0, 7, 3, 2, 1, 1, 0, 1, 1, 1],
        ),
    ];
    for (name, bytes) in gpu_seeds {
        write("gpu_calls", name, &bytes);
    }

    // Components: real jobs, a truncated one, a core module, garbage.
    let vector_add = guest_wasm("vector_add");
    write("sandbox_load", "vector_add.wasm", &vector_add);
    write(
        "sandbox_load",
        "truncated.wasm",
        &vector_add[..vector_add.len() / 3],
    );
    write("sandbox_load", "core-module.wasm", b"\0asm\x01\0\0\0");
    write(
        "sandbox_load",
        "component-header.wasm",
        b"\0asm\x0d\0\x01\0",
    );
    write("sandbox_load", "garbage", b"not wasm at all");
}
