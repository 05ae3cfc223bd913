//! A suanli job. `run` gets the job's input bytes and returns its output
//! bytes (or an error, which ends the job `job_error`). Use
//! `suanli_guest::{Buffer, Kernel}` to compute on the GPU; anything printed
//! goes to the job's log.

use suanli_guest::Result;

fn run(input: &[u8]) -> Result<Vec<u8>> {
    println!("{} input bytes on {}", input.len(), suanli_guest::adapter_info().name);
    Ok(input.to_vec())
}

suanli_guest::job!(run);
