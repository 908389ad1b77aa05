defmodule LsmIndex do
  @moduledoc """
  An equality route index held outside the BEAM heap: maps keys (any term) to sorted sets of
  shape handles (integers `0..2^32-1`), backed by the Rust core in `native/lsm_index_core`.

  The index lives in a NIF resource: every process holding the reference may read it
  concurrently while others write. It is freed when the last reference is garbage collected.

  Keys compare with `===`: `1` and `1.0` are different keys, so are `"a"` and `'a'`. Integers
  (64-bit) and binaries take a fast path; other terms are encoded with
  `:erlang.term_to_binary(term, [:deterministic])` under their own tag.

  ## Options (`new/1`, `open/2`)

  Every option may be left out: an absent option takes the default of the Rust core
  (`Config::default()`), listed here.

    * `:lanes` - lanes keys are spread over, `1..65536` (default `64`)
    * `:overlay_limit` - keys a lane buffers before its overlay is frozen and flushed to a
      segment in the background (default `16384`)
    * `:max_overlay_keys` - keys a lane's overlay may reach while the previous one is still
      being flushed; beyond it writes are slowed or refused, see `:overload` (default
      `4 * overlay_limit`)
    * `:overload` - what a write does when compaction is behind and its lane is full:
      `:wait` (it waits on a dirty I/O scheduler until there is room) or `:error` (it
      returns `{:error, :overloaded}` at once, writing nothing of its batch)
      (default `:wait`)
    * `:policy` - compaction policy, `:triangular` (lazy binary carry, the lowest write
      amplification measured) or `:leveled` (default `:triangular`)
    * `:max_segments` - most segments per lane, bounding lookup cost (default `4`)
    * `:size_ratio` - the policy's size ratio (default `1.25` triangular, `4.0` leveled)
    * `:compaction_threads` - `:shared` (one process-wide pool of `min(2, cores)` worker
      threads for every index) or a positive integer: a pool of its own
      (default `:shared`)
    * `:layout` - how new segments find a key: `:quotient` (format 2: sorted fingerprint
      remainders in buckets, the densest) or a minimal perfect hash in front of 12-byte
      records, `:ptr_hash` or `:boomphf` (format 1) (default `:quotient`)
    * `:prefilter` - binary-fuse prefilter in front of segments (default `true`)
    * `:verify` - `open/2` checks every checksum of every segment file; `false` checks
      only each file's header and its record in the manifest (a faster reopen): damage
      inside a section then goes unnoticed by lookups — they answer from the damaged bytes
      (keys missed, other handles) — until a merge reads the segment: merges verify every
      input first, so the damage poisons the index (naming file and section) instead of
      being copied; `verify: true` or `lsm-index verify DIR` finds it at once (default `true`)
    * `:sync` - when `open/2`'s write-ahead log reaches the disk: `:flush`, `:always` or
      `:none`, see `open/2` (default `:flush`)
    * `:count_handles` - keep, for each handle, how many keys hold it (`handle_count/2`,
      `distinct_handles/1`, `handles/1`): exact through every write, drop and reopen, about
      1 byte per handle when handles are numbered densely (default `false`)

  ## Scheduling

  Lookups, point writes, `drop_handle/2`, write batches of up to 500 pairs and lookup
  batches of up to 500 keys, listed or packed (each well under 1 ms), run on normal
  schedulers and never build segments: flushes and merges run on the background compaction
  pool (OS threads at a lower CPU priority). A write that finds its lane full while
  compaction catches up writes nothing on the normal scheduler and, with `overload: :wait`,
  is retried on a dirty I/O scheduler, where it waits. Larger batches, `compact/1`,
  `size/1` and `stats/1` run on dirty schedulers.

  ## Compaction events

  `subscribe/2` delivers `{:lsm_index, :compaction_done, info}` to a process after each
  background job (`info`: `:job`, `:lane`, `:flushes`, `:merges`, `:keys_flushed`,
  `:keys_written`, `:bytes_written`, `:segments`, `:duration_us`); `subscribe/3` can ask for
  each job's start and failure too. When the `:telemetry` application is loaded, every index
  also emits `[:lsm_index, :compaction, :start | :stop | :exception]` spans and
  `lookup_many/2` `[:lsm_index, :lookup_many, ...]` ones (see `LsmIndex.Telemetry`).

  ## Errors

  Caller mistakes (a bad option, a handle out of range, a closed index) raise `ArgumentError`.
  Operational failures are returned as `{:error, reason}`; `new!/1`, `open!/2`, `flush!/1`,
  `backup!/2` and `close!/1` raise them as `LsmIndex.Error` instead.

  ## Example

      iex> {:ok, index} = LsmIndex.new()
      iex> :ok = LsmIndex.add(index, "user_id=42", 7)
      iex> :ok = LsmIndex.add_many(index, [{"user_id=42", 3}, {42, 7}])
      iex> LsmIndex.lookup(index, "user_id=42")
      [3, 7]
      iex> LsmIndex.lookup_many(index, [42, 42.0])
      [[7], []]
  """

  alias LsmIndex.{Error, Native}

  # The input checks (`LsmIndex.Checks`): `call/2` around each NIF call, the index checked;
  # `key/1`, `handle!/1`, `pairs!/1`, ... Caller mistakes raise ArgumentError.
  import LsmIndex.Checks

  @typedoc "An index (a NIF resource)."
  @opaque t :: reference()
  @typedoc "A shape handle."
  @type handle :: 0..4_294_967_295

  # Larger batches run on dirty schedulers: at ~1 µs per written pair and ~0.5 µs per looked
  # up key (10M keys, this VM), these keep a normal-scheduler call well under 1 ms.
  @dirty_write_batch 500
  @dirty_lookup_batch 500

  @doc "Creates an empty in-memory index; see the module doc for options."
  @spec new(keyword()) :: {:ok, t()} | {:error, term()}
  def new(opts \\ []) do
    opts |> options!() |> Native.index_new() |> attached()
  end

  @doc false
  # The options the caller gave, validated, as the map the NIF reads (`LsmIndex.Options`);
  # also used by `LsmIndex.ShapeRouter` and `LsmIndex.Filter` for their equality indexes.
  defdelegate options!(opts), to: LsmIndex.Options, as: :native!

  # New indexes report to the telemetry bridge when :telemetry is loaded.
  defp attached({:ok, index} = ok) do
    LsmIndex.Telemetry.attach(index)
    ok
  end

  defp attached(error), do: error

  @doc """
  Opens the persistent index in directory `path`, creating it if needed (on a dirty I/O
  scheduler). Takes the options of `new/1` (`:lanes` only matters for a new index),
  `:verify` (default `true`: check every checksum of every segment file at open; `false`
  checks headers only, and damage inside a file is then not caught, see the module doc) and
  `:sync` (below). Returns `{:error, :locked}` while another index (in this VM or
  another OS process) has the directory open, `{:error, {:corrupt | :checksum_mismatch, msg}}`
  for damaged files.

  Durability: every write is appended to a write-ahead log; `:sync` says when it reaches the
  disk: `:flush` (default) when `flush/1` is called — one fsync for every write before it —,
  `:always` before each write call returns (one fsync per call; batch with `add_many/2`),
  `:none` never by us (`flush/1` hands it to the OS: survives the VM crashing, not the
  machine). A write acknowledged by a completed `flush/1` survives any crash; after one, the
  index holds a prefix of the writes made.
  """
  @spec open(Path.t(), keyword()) :: {:ok, t()} | {:error, term()}
  def open(path, opts \\ []) do
    path =
      case path do
        p when is_binary(p) and p != "" ->
          p

        other ->
          raise ArgumentError, "expected a directory path (a string), got: #{inspect(other)}"
      end

    path |> Native.index_open(options!(opts)) |> attached()
  end

  @doc "`new/1`, returning the index or raising `LsmIndex.Error`."
  @spec new!(keyword()) :: t()
  def new!(opts \\ []), do: opts |> new() |> Error.unwrap!()

  @doc "`open/2`, returning the index or raising `LsmIndex.Error` (`reason: :locked`, ...)."
  @spec open!(Path.t(), keyword()) :: t()
  def open!(path, opts \\ []), do: path |> open(opts) |> Error.unwrap!()

  @doc "Makes every write so far durable: one fsync of the log (a no-op in memory)."
  @spec flush(t()) :: :ok | {:error, term()}
  def flush(index), do: call(index, &Native.index_flush/1)

  @doc "`flush/1`, raising `LsmIndex.Error` when the log cannot be synced."
  @spec flush!(t()) :: :ok
  def flush!(index), do: index |> flush() |> Error.unwrap!()

  @doc """
  Copies a consistent online snapshot of a persistent index into the new (or empty)
  directory `dest_dir`: hard links to the immutable segment files, copies of the log and the
  manifest. Writers keep going; the backup opens with `open/2` like any index and holds every
  write flushed before the call.
  """
  @spec backup(t(), Path.t()) :: :ok | {:error, term()}
  def backup(index, dest_dir) when is_binary(dest_dir) and dest_dir != "",
    do: call(index, &Native.index_backup(&1, dest_dir))

  def backup(_index, dest_dir),
    do: raise(ArgumentError, "expected a directory path (a string), got: #{inspect(dest_dir)}")

  @doc "`backup/2`, raising `LsmIndex.Error` (e.g. `reason: :io` for a non-empty `dest_dir`)."
  @spec backup!(t(), Path.t()) :: :ok
  def backup!(index, dest_dir), do: index |> backup(dest_dir) |> Error.unwrap!()

  @doc """
  Flushes every overlay into segment files (so the log can be deleted), releases the
  directory and the index (an in-memory one too). Closing again returns `:ok`; every other
  call on a closed index raises `ArgumentError`, except `wait_idle/1`, `subscribe/2` and
  `unsubscribe/2`, which return `:ok` (no job runs any more).
  """
  @spec close(t()) :: :ok | {:error, term()}
  def close(index), do: call(index, &Native.index_close/1)

  @doc "`close/1`, raising `LsmIndex.Error` when the final flush fails (`:ok` again when closed)."
  @spec close!(t()) :: :ok
  def close!(index), do: index |> close() |> Error.unwrap!()

  @doc "Adds `handle` to `key`'s set; adding a present pair is `:ok`."
  @spec add(t(), term(), handle()) :: :ok | {:error, term()}
  def add(index, key, handle) do
    {k, h} = {key(key), handle!(handle)}

    call(index, fn i ->
      settle(Native.index_add(i, k, h), fn -> Native.index_add_many_dirty(i, [{k, h}]) end)
    end)
  end

  @doc "Removes `handle` from `key`'s set; removing an absent pair is `:ok`."
  @spec remove(t(), term(), handle()) :: :ok | {:error, term()}
  def remove(index, key, handle) do
    {k, h} = {key(key), handle!(handle)}

    call(index, fn i ->
      settle(Native.index_remove(i, k, h), fn -> Native.index_remove_many_dirty(i, [{k, h}]) end)
    end)
  end

  @doc "Adds every `{key, handle}` pair, in order, in one call."
  @spec add_many(t(), [{term(), handle()}]) :: :ok | {:error, term()}
  def add_many(index, pairs) do
    pairs = pairs!(pairs)

    if length(pairs) > @dirty_write_batch,
      do: call(index, &Native.index_add_many_dirty(&1, pairs)),
      else:
        call(index, fn i ->
          settle(Native.index_add_many(i, pairs), fn -> Native.index_add_many_dirty(i, pairs) end)
        end)
  end

  @doc "Removes every `{key, handle}` pair, in order, in one call."
  @spec remove_many(t(), [{term(), handle()}]) :: :ok | {:error, term()}
  def remove_many(index, pairs) do
    pairs = pairs!(pairs)

    if length(pairs) > @dirty_write_batch,
      do: call(index, &Native.index_remove_many_dirty(&1, pairs)),
      else:
        call(index, fn i ->
          settle(Native.index_remove_many(i, pairs), fn ->
            Native.index_remove_many_dirty(i, pairs)
          end)
        end)
  end

  @doc "The sorted handles of `key`; `[]` when absent."
  @spec lookup(t(), term()) :: [handle()]
  def lookup(index, key) do
    k = key(key)

    # the hottest call: no closure, and the NIF returns the list itself
    case index_lookup(index, k) do
      handles when is_list(handles) -> handles
      error -> Error.unwrap!(closed!(index, error))
    end
  end

  @doc "The sorted handles of each key, in the order of `keys`, in one call."
  @spec lookup_many(t(), [term()]) :: [[handle()]]
  def lookup_many(index, keys), do: LsmIndex.Telemetry.lookup_many(index, keys, &looked_up/2)

  defp looked_up(index, keys) when is_list(keys) do
    encoded = if plain_keys?(keys), do: keys, else: Enum.map(keys, &key/1)

    fun =
      if length(encoded) > @dirty_lookup_batch,
        do: &Native.index_lookup_many_dirty/2,
        else: &Native.index_lookup_many/2

    Error.unwrap!(call(index, &fun.(&1, encoded)))
  end

  defp looked_up(_index, keys),
    do: raise(ArgumentError, "expected a list of keys, got: #{inspect(keys)}")

  @doc """
  `keys` as one binary for `lookup_many_packed/2`, each key encoded as `lookup/2` encodes
  it, so packed and listed keys find the same sets. Worth it for keys looked up more than
  once, or built as bytes where they are made: packing a list costs about what
  `lookup_many/2` spends converting it (a few tens of ns a key), so a list looked up once
  gains nothing. The layout is stable (`lsm_index_core::packed`):
  `<<count::32-little>>`, then per key `<<len::32-little, key::binary-size(len)>>` with
  `key` = `<<1, i::64-big>>` (an integer in the 64-bit range), `<<2, bytes::binary>>` (a
  binary) or `<<3, external::binary>>` (any other term,
  `:erlang.term_to_binary(term, [:deterministic])`).
  """
  @spec pack_keys([term()]) :: binary()
  def pack_keys(keys) when is_list(keys), do: LsmIndex.Packed.keys(keys)

  def pack_keys(keys), do: raise(ArgumentError, "expected a list of keys, got: #{inspect(keys)}")

  @doc """
  `lookup_many/2` of keys packed by `pack_keys/1`: the NIF reads each key in place from the
  one binary (no term to convert, nothing copied) and answers the sorted handles of each, in
  order. A malformed binary raises `ArgumentError` saying what is wrong at which byte;
  scheduling (a dirty scheduler above 500 keys) and errors otherwise as `lookup_many/2`.

      iex> {:ok, index} = LsmIndex.new()
      iex> :ok = LsmIndex.add_many(index, [{42, 7}, {"a", 1}, {42, 3}])
      iex> packed = LsmIndex.pack_keys([42, "a", 42.0])
      iex> LsmIndex.lookup_many_packed(index, packed)
      [[3, 7], [1], []]
  """
  @spec lookup_many_packed(t(), binary()) :: [[handle()]]
  def lookup_many_packed(index, packed) when is_binary(packed) do
    fun =
      case packed do
        <<count::32-little, _::binary>> when count > @dirty_lookup_batch ->
          &Native.index_lookup_many_packed_dirty/2

        _ ->
          &Native.index_lookup_many_packed/2
      end

    case packed_nif(index, fun, packed) do
      lists when is_list(lists) -> lists
      error -> Error.unwrap!(closed!(index, error))
    end
  end

  def lookup_many_packed(_index, packed),
    do:
      raise(ArgumentError, "expected a binary from LsmIndex.pack_keys/1, got: #{inspect(packed)}")

  @doc "Removes `handle` from every key at once (filtered now, purged by compaction)."
  @spec drop_handle(t(), handle()) :: :ok | {:error, term()}
  def drop_handle(index, handle) do
    h = handle!(handle)

    call(index, fn i ->
      settle(Native.index_drop_handle(i, h), fn -> Native.index_drop_handle_dirty(i, h) end)
    end)
  end

  @doc """
  Full compaction of every lane: overlays flushed and each lane merged into one segment,
  tombstones and dropped handles purged. The work runs on the compaction pool; the call waits
  for it (on a dirty I/O scheduler).
  """
  @spec compact(t()) :: :ok | {:error, term()}
  def compact(index), do: call(index, &Native.index_compact/1)

  @doc """
  Waits until no background compaction job of `index` is queued or running (a quiet point
  for measurements and tests; on a dirty I/O scheduler). On a closed index it returns `:ok`
  at once: no job does anything after `close/1`.
  """
  @spec wait_idle(t()) :: :ok | {:error, term()}
  def wait_idle(index), do: call(index, &Native.index_wait_idle/1)

  @doc """
  Sends `{:lsm_index, :compaction_done, info}` to `pid` after each background compaction job
  of `index` (see the module doc for `info`). Deliveries stop when `pid` exits or
  `unsubscribe/2` is called; subscribing twice delivers once (and adds the events asked for).

  Option `:events` (default `[:done]`) may ask for more of each job:

    * `:started` - `{:lsm_index, :compaction_started, %{job: job, lane: lane}}` right
      before the job writes its first segment
    * `:done` - `{:lsm_index, :compaction_done, info}`, as above
    * `:failed` - `{:lsm_index, :compaction_failed, %{job: job, lane: lane, duration_us: us,
      error: error}}` when the job fails: `error` is `{kind, message}` as in an
      `{:error, {kind, message}}` reply (`:io`, `:checksum_mismatch`, ...; the index is then
      poisoned), `{:closed, message}` or `{:poisoned, message}` when `close/1` or another
      job's failure stopped it, or `{:panic, message}`

  `job` is a number unique in the OS process (`info` of `:compaction_done` carries it too).
  A job's `:compaction_started` is followed by exactly one `:compaction_done` or
  `:compaction_failed`; a job with nothing to write sends nothing.
  """
  @spec subscribe(t(), pid(), keyword()) :: :ok
  def subscribe(index, pid \\ self(), opts \\ [])

  def subscribe(index, pid, opts) when is_pid(pid) do
    events = Keyword.validate!(opts, events: [:done])[:events]
    mask = events!(events)
    call(index, &Native.index_subscribe(&1, pid, mask))
  end

  def subscribe(_index, pid, _opts),
    do: raise(ArgumentError, "expected a pid, got: #{inspect(pid)}")

  @doc "Stops the deliveries of `subscribe/2` to `pid`."
  @spec unsubscribe(t(), pid()) :: :ok
  def unsubscribe(index, pid \\ self())

  def unsubscribe(index, pid) when is_pid(pid),
    do: call(index, &Native.index_unsubscribe(&1, pid))

  def unsubscribe(_index, pid), do: raise(ArgumentError, "expected a pid, got: #{inspect(pid)}")

  @doc "Number of keys with a non-empty set."
  @spec size(t()) :: non_neg_integer()
  def size(index), do: Error.unwrap!(call(index, &Native.index_size/1))

  @doc """
  How many keys hold `handle`, in O(1) (on a normal scheduler). The index must have been made
  with `count_handles: true` (else `ArgumentError`, as for the two functions below).
  """
  @spec handle_count(t(), handle()) :: non_neg_integer()
  def handle_count(index, handle) do
    h = handle!(handle)
    counted!(call(index, &Native.index_handle_count(&1, h)))
  end

  @doc "How many distinct handles the keys hold, in O(1); needs `count_handles: true`."
  @spec distinct_handles(t()) :: non_neg_integer()
  def distinct_handles(index), do: counted!(call(index, &Native.index_distinct_handles/1))

  @doc """
  Every handle some key holds, ascending (on a dirty scheduler: one list element per
  handle); needs `count_handles: true`.
  """
  @spec handles(t()) :: [handle()]
  def handles(index), do: counted!(call(index, &Native.index_handles/1))

  # Asking an index made without `count_handles` for counts is a caller mistake.
  defp counted!({:error, {:invalid_config, message}}),
    do: raise(ArgumentError, message <> " (make it with LsmIndex.new(count_handles: true))")

  defp counted!(reply), do: Error.unwrap!(reply)

  @doc """
  Sizes and work counters. Sizes: `:keys`, `:lanes`, `:segments`, `:segments_per_level`
  (level => count), `:max_lane_segments`, `:segment_bytes`, `:mph_heap_bytes`,
  `:overlay_keys`, `:overlay_bytes`, `:frozen_overlays`, `:pending_drops`, and with
  `count_handles: true` `:counted_handles` (distinct handles) and `:handle_count_bytes` (their
  counts' heap; both 0 otherwise). Writes: `:ops`,
  `:bytes_ingested` (12 bytes per add/remove), `:stalls` (writes that found their lane full).
  Compaction: `:keys_flushed`, `:keys_written`, `:bytes_written`, `:flushes`, `:merges`,
  `:write_amplification` (keys written per key flushed), `:pending_jobs`, `:jobs_done`,
  `:last_job_us`, `:compaction_busy_us`, `:compaction_threads`. Lookups: `:lookup_hits`,
  `:lookup_misses`, `:prefilter_rejects` (segment probes of single lookups answered by the prefilter; batches
  skip it).
  """
  @spec stats(t()) :: map()
  def stats(index) do
    stats = Error.unwrap!(call(index, &Native.index_stats/1))
    Map.update!(stats, :segments_per_level, &Map.new/1)
  end

  # A write refused on a normal scheduler because it would have to wait (its lane is full, or
  # sync: :always needs an fsync; nothing written) answers :wait: retry where waiting is
  # allowed (dirty I/O).
  defp settle(:wait, retry), do: retry.()
  defp settle(reply, _retry), do: reply
end
