//! Shared by the iai-callgrind benchmarks whose setup is large (a shard of 1M keys).
//!
//! Under callgrind, even code outside the measured function runs instrumented (simulating every
//! instruction and memory access), about a hundred times slower than natively: loading 1M keys
//! took over a minute per benchmark. Those benchmarks run with `--instr-atstart=no` and switch
//! instrumentation on with [`start_instrumentation`] at the end of their setup, so the load runs
//! at valgrind's uninstrumented speed. The simulated caches start empty at that point; the setup
//! then runs a warm-up round (other keys) so code and hot data are in them, as in a server that
//! has been running.

/// Callgrind's command-line arguments shared by every iai benchmark: a fixed cache geometry,
/// so the simulated hits and misses do not depend on the host.
pub const CACHE_ARGS: [&str; 3] = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64"];

/// Valgrind's `VG_USERREQ_TOOL_BASE('C', 'T')` + 4: callgrind's START_INSTRUMENTATION request
/// (`callgrind.h`).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const START_INSTRUMENTATION: u64 = ((b'C' as u64) << 24 | (b'T' as u64) << 16) + 4;

/// Asks callgrind to start instrumenting (a no-op when not run under valgrind, and on targets
/// other than x86-64 Linux, where the benchmarks then simply run their setup instrumented).
// Not every benchmark file that includes this module calls it.
#[allow(dead_code)]
#[inline(never)]
pub fn start_instrumentation() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let args: [u64; 6] = [START_INSTRUMENTATION, 0, 0, 0, 0, 0];
        let mut result: u64 = 0;
        // valgrind's client-request sequence for amd64 (`valgrind.h`): four rotations of rdi by
        // 3 + 13 + 61 + 51 = 128 bits leave it unchanged, and `xchg rbx, rbx` changes nothing.
        // SAFETY: natively the block has no effect; under valgrind it reads the six words at rax
        // (alive for the whole block) and writes its answer to rdx.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") result,
                options(nostack),
            );
        }
        std::hint::black_box(result);
    }
}

/// Fixes the store's hash seed (otherwise drawn at random per process) so that table layouts,
/// and with them instruction counts, repeat exactly between runs. Call at the start of every
/// setup, before anything is hashed.
#[allow(dead_code)]
pub fn fix_hash_seed() {
    // False when a setup earlier in this process already fixed it (to the same value).
    piccolo::store::fix_seed_for_benchmarks(0x5eed_1a1c_a11b_8a5e);
}

/// The value every benchmark stores and reads: redis-benchmark's `-d 32`.
#[allow(dead_code)]
pub const VALUE: &[u8; 32] = b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// Key number `index` as redis-benchmark's `key:__rand_int__` writes it with `-r`: 12 digits.
#[allow(dead_code)]
pub fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

/// Pipelined RESP commands, one per key: `GET key`, or `SET key VALUE` when `set`.
#[allow(dead_code)]
pub fn resp_commands(set: bool, keys: &[Vec<u8>]) -> Vec<u8> {
    fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::new();
    for key in keys {
        if set {
            out.extend_from_slice(b"*3\r\n");
            bulk(&mut out, b"SET");
            bulk(&mut out, key);
            bulk(&mut out, VALUE);
        } else {
            out.extend_from_slice(b"*2\r\n");
            bulk(&mut out, b"GET");
            bulk(&mut out, key);
        }
    }
    out
}

/// The same requests as framed Cap'n Proto Requests (ids 0, 1, ..), built with the project's
/// own encoder as a client sends them: `get`, or `set` with the default condition and expiry.
#[allow(dead_code)]
pub fn capnp_requests(set: bool, keys: &[Vec<u8>]) -> Vec<u8> {
    let mut encoder = piccolo::proto::capnp::MessageEncoder::default();
    let mut out = Vec::new();
    for (id, key) in keys.iter().enumerate() {
        encoder.encode_request(&mut out, |mut request| {
            request.set_id(id as u64);
            if set {
                let mut set = request.init_set();
                set.set_key(key);
                set.set_value(VALUE);
            } else {
                request.set_get(key);
            }
        });
    }
    out
}
