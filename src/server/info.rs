//! INFO, all of it: what the server knows about itself ([`ServerInfo`]), what each worker
//! reports ([`WorkerStats`], the answer to `Op::Stats`), and the text of an INFO reply.
//!
//! An INFO command is answered in two steps. When it arrives, [`plan`] renders the sections the
//! reactor knows alone (server, clients) and its own lines of the stats section; if the
//! sections asked for need the workers' numbers (memory, stats, keyspace), the front end sends
//! `Op::Stats` to every worker and the reorder entry keeps the [`InfoText`]. When every
//! worker's [`WorkerStats`] is in, [`render`] joins the two into the text both protocols send
//! (a bulk string in RESP, `info` in Cap'n Proto).
//!
//! Imports only `message`: the layers above (order, session, route, the front ends) use it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use super::message::Reply;
use crate::proto::resp::Limits;

/// What the reactor knows about the server, for INFO, CONFIG GET, HELLO and AUTH.
#[derive(Debug)]
pub struct ServerInfo {
    /// Piccolo's version.
    pub version: &'static str,
    /// The bound address.
    pub addr: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// Queue variant name.
    pub queue: &'static str,
    /// Start time.
    pub started: Instant,
    /// `--maxclients`.
    pub maxclients: usize,
    /// Connections open now.
    pub connected_clients: usize,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Commands parsed and dispatched since start.
    pub commands_processed: u64,
    /// Wake-ups the reactor sent to workers (`Unparker::notify` that unparked).
    pub wakeups_to_workers: u64,
    /// Request size limits.
    pub limits: Limits,
    /// Largest read buffer of one connection.
    pub max_query_bytes: usize,
    /// `--requirepass`.
    pub requirepass: Option<Vec<u8>>,
}

/// What a worker reports for INFO (the reply to `Op::Stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Keys in the shard (expired ones not yet removed included, as Redis's DBSIZE).
    pub keys: u64,
    /// Bytes the shard holds (segments, table, index).
    pub memory_bytes: u64,
    /// Requests executed.
    pub requests: u64,
    /// Batches drained (each: one clock read, one flush, at most one reactor wake-up).
    pub batches: u64,
    /// Times the worker found its ring empty and waited (spin, then park).
    pub idle_waits: u64,
    /// Wake-ups the worker sent to the reactor (`mio::Waker::wake`).
    pub reactor_wakeups: u64,
    /// Keys removed because their deadline passed.
    pub expired_keys: u64,
    /// Idle waits that ended in a park (the reactor had to wake the worker with a futex call);
    /// the rest of `idle_waits` found work while spinning.
    pub parks: u64,
    /// Key lookups by reads (GET, MGET, GETDEL, GETEX, GETV, EXISTS, TYPE, TTL, PTTL) that
    /// found the key.
    pub keyspace_hits: u64,
    /// Key lookups by reads that did not find it.
    pub keyspace_misses: u64,
    /// Keys with a deadline.
    pub expires: u64,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// Bytes of dead records not yet cleaned.
    pub garbage_bytes: u64,
    /// Bytes of the hash table.
    pub table_bytes: u64,
    /// Pages the worker touched ahead of need while idle (`Shard::prefault_step`).
    pub pages_prefaulted: u64,
}

impl WorkerStats {
    /// Fields, in wire order.
    const FIELDS: usize = 15;

    fn fields(&self) -> [u64; Self::FIELDS] {
        [
            self.keys,
            self.memory_bytes,
            self.requests,
            self.batches,
            self.idle_waits,
            self.reactor_wakeups,
            self.expired_keys,
            self.parks,
            self.keyspace_hits,
            self.keyspace_misses,
            self.expires,
            self.live_bytes,
            self.garbage_bytes,
            self.table_bytes,
            self.pages_prefaulted,
        ]
    }

    /// Packs the stats as little-endian `u64`s.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.fields()
            .iter()
            .flat_map(|field| field.to_le_bytes())
            .collect()
    }

    /// Unpacks [`to_bytes`](Self::to_bytes); missing fields read as 0.
    pub fn from_bytes(bytes: &[u8]) -> WorkerStats {
        let mut fields = [0u64; Self::FIELDS];
        for (field, chunk) in fields.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *field = u64::from_le_bytes(word);
        }
        let [
            keys,
            memory_bytes,
            requests,
            batches,
            idle_waits,
            reactor_wakeups,
            expired_keys,
            parks,
            keyspace_hits,
            keyspace_misses,
            expires,
            live_bytes,
            garbage_bytes,
            table_bytes,
            pages_prefaulted,
        ] = fields;
        WorkerStats {
            keys,
            memory_bytes,
            requests,
            batches,
            idle_waits,
            reactor_wakeups,
            expired_keys,
            parks,
            keyspace_hits,
            keyspace_misses,
            expires,
            live_bytes,
            garbage_bytes,
            table_bytes,
            pages_prefaulted,
        }
    }
}

/// The INFO sections that need the workers' numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSections {
    /// `# Memory`.
    pub memory: bool,
    /// `# Stats`.
    pub stats: bool,
    /// `# Keyspace`.
    pub keyspace: bool,
}

impl WorkerSections {
    fn any(self) -> bool {
        self.memory || self.stats || self.keyspace
    }
}

/// The reactor's part of an INFO reply, rendered when the command arrived.
#[derive(Debug, Default)]
pub struct InfoText {
    /// Sections the reactor answers alone (server, clients).
    pub head: String,
    /// The reactor's lines of the stats section.
    pub reactor_stats: String,
    /// Which sections to build from the workers.
    pub sections: WorkerSections,
}

/// What an INFO command needs.
#[derive(Debug)]
pub enum InfoPlan {
    /// The sections asked for need no worker: the whole text.
    Local(String),
    /// Ask every worker for its [`WorkerStats`]; [`render`] finishes the text.
    Workers(InfoText),
}

/// INFO for `section` (any case; `default`, `all`, `everything` or one section name).
/// `in_flight` is the number of requests each worker has in flight.
pub fn plan(section: &[u8], info: &ServerInfo, in_flight: &[usize]) -> InfoPlan {
    let section = section.to_ascii_lowercase();
    let all = matches!(section.as_slice(), b"default" | b"all" | b"everything");
    let sections = WorkerSections {
        memory: all || section == b"memory",
        stats: all || section == b"stats",
        keyspace: all || section == b"keyspace",
    };
    let mut text = String::new();
    // Writing into a String cannot fail.
    if all || section == b"server" {
        let _ = write!(
            text,
            "# Server\r\nredis_version:7.2.0\r\npiccolo_version:{}\r\nredis_mode:standalone\r\n\
             os:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\
             workers:{}\r\nqueue:{}\r\n",
            info.version,
            std::env::consts::OS,
            std::process::id(),
            info.addr.port(),
            info.started.elapsed().as_secs(),
            info.workers,
            info.queue,
        );
    }
    if all || section == b"clients" {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\
             total_connections_received:{}\r\n",
            info.connected_clients, info.maxclients, info.total_connections,
        );
    }
    if !sections.any() {
        return InfoPlan::Local(text);
    }
    let mut reactor_stats = format!(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
         wakeups_to_workers:{}\r\n",
        info.total_connections, info.commands_processed, info.wakeups_to_workers,
    );
    for (worker, in_flight) in in_flight.iter().enumerate() {
        let _ = write!(reactor_stats, "worker{worker}_in_flight:{in_flight}\r\n");
    }
    InfoPlan::Workers(InfoText {
        head: text,
        reactor_stats,
        sections,
    })
}

/// INFO's text: the reactor's sections, then memory, stats and keyspace from the workers'
/// replies (`parts`, one per worker, in worker order; a missing one counts as zeros).
pub fn render(info: Option<&InfoText>, parts: &[Option<Reply>]) -> String {
    let empty = InfoText::default();
    let info = info.unwrap_or(&empty);
    let workers: Vec<WorkerStats> = parts
        .iter()
        .map(|part| {
            part.as_ref().map_or_else(WorkerStats::default, |reply| {
                WorkerStats::from_bytes(reply.data.as_slice())
            })
        })
        .collect();
    let sum = |field: fn(&WorkerStats) -> u64| workers.iter().map(field).sum::<u64>();
    let mut text = info.head.clone();
    // Writing into a String cannot fail.
    if info.sections.memory {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let used = sum(|stats| stats.memory_bytes);
        let rss = resident_bytes().unwrap_or(0);
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
             used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
             maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
             store_live_bytes:{}\r\nstore_garbage_bytes:{}\r\nstore_table_bytes:{}\r\n\
             store_pages_prefaulted:{}\r\n",
            human_bytes(used),
            human_bytes(rss),
            sum(|stats| stats.live_bytes),
            sum(|stats| stats.garbage_bytes),
            sum(|stats| stats.table_bytes),
            sum(|stats| stats.pages_prefaulted),
        );
        for (index, stats) in workers.iter().enumerate() {
            let _ = write!(text, "worker{index}_memory:{}\r\n", stats.memory_bytes);
        }
    }
    if info.sections.stats {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let _ = write!(
            text,
            "# Stats\r\n{}keyspace_hits:{}\r\nkeyspace_misses:{}\r\nworker_requests:{}\r\n\
             worker_batches:{}\r\nworker_idle_waits:{}\r\nworker_parks:{}\r\n\
             wakeups_to_reactor:{}\r\nexpired_keys:{}\r\n",
            info.reactor_stats,
            sum(|stats| stats.keyspace_hits),
            sum(|stats| stats.keyspace_misses),
            sum(|stats| stats.requests),
            sum(|stats| stats.batches),
            sum(|stats| stats.idle_waits),
            sum(|stats| stats.parks),
            sum(|stats| stats.reactor_wakeups),
            sum(|stats| stats.expired_keys),
        );
        for (index, stats) in workers.iter().enumerate() {
            let _ = write!(
                text,
                "worker{index}:keys={},requests={},batches={},idle_waits={},parks={},\
                 wakeups_to_reactor={}\r\n",
                stats.keys,
                stats.requests,
                stats.batches,
                stats.idle_waits,
                stats.parks,
                stats.reactor_wakeups
            );
        }
    }
    if info.sections.keyspace {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# Keyspace\r\n");
        let keys = sum(|stats| stats.keys);
        if keys > 0 {
            // avg_ttl is not estimated; 0 is what Redis reports before it has sampled any.
            let expires = sum(|stats| stats.expires);
            let _ = write!(text, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
    }
    text
}

/// The process's resident set in bytes, from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: `sysconf` only reads a configuration value; it has no memory-safety preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok().filter(|&size| size > 0)?)
}

/// Redis's `_human` form: bytes as B, K, M, G with two decimals.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_stats_round_trip() {
        let stats = WorkerStats {
            keys: 1,
            memory_bytes: 2,
            requests: 3,
            batches: 4,
            idle_waits: 5,
            reactor_wakeups: 6,
            expired_keys: u64::MAX,
            parks: 7,
            keyspace_hits: 8,
            keyspace_misses: 9,
            expires: 10,
            live_bytes: 11,
            garbage_bytes: 12,
            table_bytes: 13,
            pages_prefaulted: 14,
        };
        assert_eq!(WorkerStats::from_bytes(&stats.to_bytes()), stats);
        assert_eq!(WorkerStats::from_bytes(b""), WorkerStats::default());
    }

    #[test]
    fn human_bytes_as_redis_writes_them() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 20), "3.00M");
        assert_eq!(human_bytes(5 << 30), "5.00G");
    }
}
