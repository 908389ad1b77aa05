defmodule LsmIndex do
  @moduledoc """
  An equality route index held outside the BEAM heap: maps keys (any term) to sorted sets of
  shape handles (integers `0..2^32-1`), backed by the Rust core in `native/lsm_index_core`.

  The index lives in a NIF resource: every process holding the reference may read it
  concurrently while others write. It is freed when the last reference is garbage collected.

  Keys compare with `===`: `1` and `1.0` are different keys, so are `"a"` and `'a'`. Integers
  (64-bit) and binaries take a fast path; other terms are encoded with
  `:erlang.term_to_binary(term, [:deterministic])` under their own tag.

  ## Options (`new/1`)

    * `:lanes` - lanes keys are spread over, `1..65536` (default `64`)
    * `:overlay_limit` - keys a lane buffers before flushing a segment (default `16384`)
    * `:max_segments` - most segments per lane, bounding lookup cost (default `3`)
    * `:mph` - `:ptr_hash` or `:boomphf` (default `:ptr_hash`)
    * `:prefilter` - binary-fuse prefilter in front of segments (default `true`)

  ## Scheduling

  Lookups, point writes, `drop_handle/2` and batches of up to #{1_000} keys run on normal
  schedulers and never compact. When a write fills a lane's overlay, the NIF says so and the
  calling process runs the flush or merge on a dirty CPU scheduler before returning (so a
  fast writer is slowed by its own compaction, never a scheduler). Larger batches,
  `compact/1`, `size/1` and `stats/1` run on dirty CPU schedulers.

  ## Example

      iex> {:ok, index} = LsmIndex.new()
      iex> :ok = LsmIndex.add(index, "user_id=42", 7)
      iex> :ok = LsmIndex.add_many(index, [{"user_id=42", 3}, {42, 7}])
      iex> LsmIndex.lookup(index, "user_id=42")
      [3, 7]
      iex> LsmIndex.lookup_many(index, [42, 42.0])
      [[7], []]
  """

  alias LsmIndex.Native

  @typedoc "An index (a NIF resource)."
  @opaque t :: reference()
  @typedoc "A shape handle."
  @type handle :: 0..4_294_967_295

  @max_handle 4_294_967_295
  @dirty_batch 1_000
  @min_i64 -9_223_372_036_854_775_808
  @max_i64 9_223_372_036_854_775_807

  defmodule Error do
    @moduledoc "An operational failure inside the index (corruption, a failed build)."
    defexception [:reason, :message]
  end

  @doc "Creates an empty in-memory index; see the module doc for options."
  @spec new(keyword()) :: {:ok, t()} | {:error, term()}
  def new(opts \\ []) do
    {lanes, overlay_limit, max_segments, mph, prefilter} = options!(opts)
    Native.index_new(lanes, overlay_limit, max_segments, mph, prefilter)
  end

  defp options!(opts) do
    opts =
      Keyword.validate!(opts,
        lanes: 64,
        overlay_limit: 16_384,
        max_segments: 3,
        mph: :ptr_hash,
        prefilter: true
      )

    lanes = int_opt!(opts, :lanes, 1, 65_536)
    overlay_limit = int_opt!(opts, :overlay_limit, 1, 1_099_511_627_776)
    max_segments = int_opt!(opts, :max_segments, 1, 1_000)

    mph =
      case opts[:mph] do
        m when m in [:ptr_hash, :boomphf] -> Atom.to_string(m)
        other -> raise ArgumentError, ":mph must be :ptr_hash or :boomphf, got: #{inspect(other)}"
      end

    prefilter =
      case opts[:prefilter] do
        b when is_boolean(b) -> b
        other -> raise ArgumentError, ":prefilter must be a boolean, got: #{inspect(other)}"
      end

    {lanes, overlay_limit, max_segments, mph, prefilter}
  end

  @doc """
  Opens the persistent index in directory `path`, creating it if needed (on a dirty I/O
  scheduler). Takes the options of `new/1` (`:lanes` only matters for a new index) and
  `:verify` (default `true`: check every checksum of every segment file at open; `false`
  checks headers only). Returns `{:error, :locked}` while another index (in this VM or
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

    {sync, opts} = Keyword.pop(opts, :sync, :flush)

    unless sync in [:flush, :always, :none],
      do: raise(ArgumentError, ":sync must be :flush, :always or :none, got: #{inspect(sync)}")

    {verify, opts} = Keyword.pop(opts, :verify, true)

    unless is_boolean(verify),
      do: raise(ArgumentError, ":verify must be a boolean, got: #{inspect(verify)}")

    {lanes, overlay_limit, max_segments, mph, prefilter} = options!(opts)

    Native.index_open(
      path,
      lanes,
      overlay_limit,
      max_segments,
      mph,
      prefilter,
      verify,
      to_string(sync)
    )
  end

  @doc "Makes every write so far durable: one fsync of the log (a no-op in memory)."
  @spec flush(t()) :: :ok | {:error, term()}
  def flush(index), do: call(index, &Native.index_flush/1)

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

  @doc """
  Flushes every overlay into segment files (so the log can be deleted), releases the
  directory and the index; later calls on it raise `ArgumentError`.
  """
  @spec close(t()) :: :ok | {:error, term()}
  def close(index), do: call(index, &Native.index_close/1)

  @doc "Adds `handle` to `key`'s set; adding a present pair is `:ok`."
  @spec add(t(), term(), handle()) :: :ok | {:error, term()}
  def add(index, key, handle) do
    {k, h} = {key(key), handle!(handle)}
    call(index, &settle(&1, Native.index_add(&1, k, h)))
  end

  @doc "Removes `handle` from `key`'s set; removing an absent pair is `:ok`."
  @spec remove(t(), term(), handle()) :: :ok | {:error, term()}
  def remove(index, key, handle) do
    {k, h} = {key(key), handle!(handle)}
    call(index, &settle(&1, Native.index_remove(&1, k, h)))
  end

  @doc "Adds every `{key, handle}` pair, in order, in one call."
  @spec add_many(t(), [{term(), handle()}]) :: :ok | {:error, term()}
  def add_many(index, pairs) do
    pairs = pairs!(pairs)

    if length(pairs) > @dirty_batch,
      do: call(index, &Native.index_add_many_dirty(&1, pairs)),
      else: call(index, &settle(&1, Native.index_add_many(&1, pairs)))
  end

  @doc "Removes every `{key, handle}` pair, in order, in one call."
  @spec remove_many(t(), [{term(), handle()}]) :: :ok | {:error, term()}
  def remove_many(index, pairs) do
    pairs = pairs!(pairs)

    if length(pairs) > @dirty_batch,
      do: call(index, &Native.index_remove_many_dirty(&1, pairs)),
      else: call(index, &settle(&1, Native.index_remove_many(&1, pairs)))
  end

  @doc "The sorted handles of `key`; `[]` when absent."
  @spec lookup(t(), term()) :: [handle()]
  def lookup(index, key) do
    k = key(key)

    # the hottest call: no closure, and the NIF returns the list itself
    case index_lookup(index, k) do
      handles when is_list(handles) -> handles
      error -> unwrap!(closed!(index, error))
    end
  end

  defp index_lookup(index, k) when is_reference(index) do
    Native.index_lookup(index, k)
  rescue
    ArgumentError -> reraise ArgumentError, [message: not_an_index(index)], __STACKTRACE__
  end

  defp index_lookup(index, _k), do: raise(ArgumentError, not_an_index(index))

  @doc "The sorted handles of each key, in the order of `keys`, in one call."
  @spec lookup_many(t(), [term()]) :: [[handle()]]
  def lookup_many(index, keys) when is_list(keys) do
    encoded = Enum.map(keys, &key/1)

    fun =
      if length(encoded) > @dirty_batch,
        do: &Native.index_lookup_many_dirty/2,
        else: &Native.index_lookup_many/2

    unwrap!(call(index, &fun.(&1, encoded)))
  end

  def lookup_many(_index, keys),
    do: raise(ArgumentError, "expected a list of keys, got: #{inspect(keys)}")

  @doc "Removes `handle` from every key at once (filtered now, purged by compaction)."
  @spec drop_handle(t(), handle()) :: :ok | {:error, term()}
  def drop_handle(index, handle) do
    h = handle!(handle)
    call(index, &Native.index_drop_handle(&1, h))
  end

  @doc "Full synchronous compaction of every lane (dirty scheduler)."
  @spec compact(t()) :: :ok | {:error, term()}
  def compact(index), do: call(index, &Native.index_compact/1)

  @doc "Number of keys with a non-empty set."
  @spec size(t()) :: non_neg_integer()
  def size(index), do: unwrap!(call(index, &Native.index_size/1))

  @doc "Sizes and work counters: keys, lanes, segments per level, bytes, write amplification."
  @spec stats(t()) :: map()
  def stats(index) do
    stats = unwrap!(call(index, &Native.index_stats/1))
    Map.update!(stats, :segments_per_level, &Map.new/1)
  end

  # -- input checks: caller mistakes raise ArgumentError with a clear message --

  # Arguments are checked before `fun` runs: what the NIF can still refuse is the index.
  defp call(index, fun), do: closed!(index, nif(index, fun))

  defp nif(index, fun) when is_reference(index) do
    fun.(index)
  rescue
    ArgumentError -> reraise ArgumentError, [message: not_an_index(index)], __STACKTRACE__
  end

  defp nif(index, _fun), do: raise(ArgumentError, not_an_index(index))

  # Using a closed index is a caller mistake.
  defp closed!(index, {:error, {:closed, _}}),
    do: raise(ArgumentError, "the index was closed: #{inspect(index)}")

  defp closed!(_index, reply), do: reply

  defp not_an_index(index), do: "expected an index from LsmIndex.new/1, got: #{inspect(index)}"

  # A write that filled an overlay answers :maintain: compact now, on a dirty scheduler.
  defp settle(index, :maintain), do: Native.index_maintain(index)
  defp settle(_index, reply), do: reply

  defp key(k) when is_integer(k) and k >= @min_i64 and k <= @max_i64, do: k
  defp key(k) when is_binary(k), do: k
  defp key(k), do: {:__lsm_term__, :erlang.term_to_binary(k, [:deterministic])}

  defp handle!(h) when is_integer(h) and h >= 0 and h <= @max_handle, do: h

  defp handle!(h),
    do:
      raise(ArgumentError, "a handle must be an integer in 0..#{@max_handle}, got: #{inspect(h)}")

  defp pairs!(pairs) when is_list(pairs) do
    Enum.map(pairs, fn
      {k, h} -> {key(k), handle!(h)}
      other -> raise ArgumentError, "expected a {key, handle} pair, got: #{inspect(other)}"
    end)
  end

  defp pairs!(other),
    do: raise(ArgumentError, "expected a list of {key, handle} pairs, got: #{inspect(other)}")

  defp int_opt!(opts, name, min, max) do
    case opts[name] do
      v when is_integer(v) and v >= min and v <= max ->
        v

      other ->
        raise ArgumentError,
              "#{inspect(name)} must be an integer in #{min}..#{max}, got: #{inspect(other)}"
    end
  end

  defp unwrap!({:ok, value}), do: value

  defp unwrap!({:error, {reason, message}}),
    do: raise(Error, reason: reason, message: message)
end
