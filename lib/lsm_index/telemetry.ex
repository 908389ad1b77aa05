defmodule LsmIndex.Telemetry do
  @moduledoc """
  Emits `:telemetry` spans for lookups, routes and compaction jobs when the host has the
  `:telemetry` application loaded; lsm_index does not depend on it, and does next to nothing
  when it is absent.

  ## Events

  Each span follows `:telemetry.span/3`'s conventions: a `:start` event with measurements
  `%{system_time: t, monotonic_time: t}`, then either `:stop` with
  `%{duration: native, monotonic_time: t}` or, when the call raises, `:exception` with
  `%{duration: native, monotonic_time: t}` and the start metadata plus `:kind`, `:reason` and
  `:stacktrace` (the error is raised again). Durations are in `:native` time units
  (`System.convert_time_unit/3`). Every event's metadata holds a `:telemetry_span_context`,
  the same term in a span's `:start` and its `:stop` or `:exception`; `:stop` has the start
  metadata.

    * `[:lsm_index, :lookup_many, :start | :stop | :exception]` - around each
      `LsmIndex.lookup_many/2`; metadata `%{index: index, key_count: n}`
    * `[:lsm_index, :route, :start | :stop | :exception]` - around each
      `LsmIndex.ShapeRouter.route_many/3` (metadata `%{router: router, change_count: n,
      sample_every: 1}`), and around one in every `sample_every` calls of `route/2` and
      `route_with_moves/2` made by a process (`%{router: router, change_count: 1,
      sample_every: n}`): a route costs ~0.5–3 µs, a span with a handler about as much
      again. A handler counting routes multiplies by `:sample_every`.
    * `[:lsm_index, :compaction, :start | :stop | :exception]` - each background job of an
      index made by `LsmIndex.new/1` or `LsmIndex.open/2` while `:telemetry` was loaded.
      `:start` (metadata `%{job: n, lane: l}`) comes right before the job writes its first
      segment; `:stop` has measurements `%{duration: native, monotonic_time: t,
      keys_flushed: n, keys_written: n, bytes_written: n}` and the job's report (see
      `LsmIndex.subscribe/3`) as metadata; `:exception` (the job failed: the index is
      poisoned, or it was closed meanwhile) has `kind: :error`, `reason: %LsmIndex.Error{}`,
      `stacktrace: []`. These are emitted by a bridge process (this module, started on first
      use) from the index's job events, so `duration` is the job's wall time measured on the
      worker thread and `monotonic_time` is when the bridge emitted the event; the span
      context is `{LsmIndex.Telemetry, job}`. A job with nothing to write has no span.

  ## When spans are on

  The first index or router made (`LsmIndex.new/1`, `LsmIndex.open/2`,
  `LsmIndex.ShapeRouter.new/4`, `open/5`) looks for `:telemetry` (`Code.ensure_loaded?/1`:
  ~1 ms when it is absent, so it is done once) and records the answer in a
  `:persistent_term`; `refresh/0` looks again. Each instrumented call reads that term once:
  when `:telemetry` is absent that is the whole cost (~12 ns a call on a 2-core VM;
  `DESIGN.md`, "Telemetry"). A host that loads `:telemetry` only after its first index or router calls
  `refresh/0` (compaction spans then come from indexes made afterwards).

  Configuration: `config :lsm_index, :telemetry_route_sample, n` (a positive integer,
  default `100`): `route/2` is spanned once per `n` calls of a process (a process's first
  span comes at a random one of its first `n` calls). Read by `refresh/0`.
  """

  use GenServer

  @compile {:no_warn_undefined, :telemetry}

  # an atom key: :persistent_term.get/2 hashes its key on every call (~15 ns here for an
  # atom, ~35 ns for a tuple): the whole cost of a call while spans are off
  @flag :lsm_index_telemetry
  @countdown {__MODULE__, :route_countdown}
  @default_route_sample 100
  @compaction [:lsm_index, :compaction]

  @doc "The event name emitted after each compaction job."
  @spec event() :: [atom()]
  def event, do: @compaction ++ [:stop]

  @doc "Every event this library emits (see the module doc)."
  @spec events() :: [[atom()]]
  def events do
    for prefix <- [[:lsm_index, :lookup_many], [:lsm_index, :route], @compaction],
        suffix <- [:start, :stop, :exception],
        do: prefix ++ [suffix]
  end

  @doc """
  Checks whether `:telemetry` is loaded and turns the spans on or off accordingly (also
  reading `:telemetry_route_sample`); returns whether they are on.
  """
  @spec refresh() :: boolean()
  def refresh do
    value =
      if Code.ensure_loaded?(:telemetry) and function_exported?(:telemetry, :execute, 3),
        do: {:on, route_sample!()},
        else: false

    # a :persistent_term write is costly (it may scan every process): only on a change
    if :persistent_term.get(@flag, nil) !== value, do: :persistent_term.put(@flag, value)
    value != false
  end

  @doc "Whether spans are on; the first call looks for `:telemetry` (`refresh/0`)."
  @spec enabled?() :: boolean()
  def enabled? do
    case :persistent_term.get(@flag, nil) do
      nil -> refresh()
      value -> value != false
    end
  end

  defp route_sample! do
    case Application.get_env(:lsm_index, :telemetry_route_sample, @default_route_sample) do
      n when is_integer(n) and n > 0 ->
        n

      other ->
        raise ArgumentError,
              ":telemetry_route_sample must be a positive integer, got: #{inspect(other)}"
    end
  end

  @doc """
  Subscribes the compaction bridge to `index` when spans are on (`enabled?/0`); returns
  whether it did.
  """
  @spec attach(LsmIndex.t()) :: boolean()
  def attach(index) do
    if enabled?() do
      :ok = LsmIndex.subscribe(index, bridge(), events: [:started, :done, :failed])
      true
    else
      false
    end
  end

  # -- spans around calls (the hooks LsmIndex and ShapeRouter call) --

  @doc false
  # `fun.(index, keys)`, spanned when spans are on.
  def lookup_many(index, keys, fun) do
    case :persistent_term.get(@flag, false) do
      false ->
        fun.(index, keys)

      _on ->
        meta = %{index: index, key_count: count(keys)}
        span([:lsm_index, :lookup_many], meta, fn -> fun.(index, keys) end)
    end
  end

  @doc false
  # `fun.(router, change)`, spanned once per `sample_every` calls of this process; `as` names
  # the router's metadata key (`:router`, or `:filter` for `LsmIndex.Filter`).
  def route(router, change, fun, as \\ :router) do
    case :persistent_term.get(@flag, false) do
      false ->
        fun.(router, change)

      {:on, every} ->
        if sampled?(every) do
          meta = %{as => router, change_count: 1, sample_every: every}
          span([:lsm_index, :route], meta, fn -> fun.(router, change) end)
        else
          fun.(router, change)
        end
    end
  end

  @doc false
  # `fun.()` routing `changes`, spanned when spans are on (`as` as in `route/4`).
  def route_many(router, changes, fun, as \\ :router) do
    case :persistent_term.get(@flag, false) do
      false ->
        fun.()

      _on ->
        meta = %{as => router, change_count: count(changes), sample_every: 1}
        span([:lsm_index, :route], meta, fun)
    end
  end

  defp count(list) when is_list(list), do: length(list)
  # `ShapeRouter.pack_changes/2`'s binary: the count in its header
  defp count(<<_width::32, n::32-little, _::binary>>), do: n
  defp count(_other), do: 0

  # A countdown in the process dictionary: true on every `every`-th call; a process starts
  # at a random point of the cycle (short-lived processes are sampled at the same rate).
  defp sampled?(every) do
    left =
      case Process.get(@countdown) do
        nil -> 1 + :erlang.phash2(make_ref(), every)
        n -> n
      end

    if left > 1 do
      Process.put(@countdown, left - 1)
      false
    else
      Process.put(@countdown, every)
      true
    end
  end

  # `:telemetry.span/3`, with the start metadata on `:stop` too (`:telemetry` may have been
  # unloaded since `refresh/0`: then just the call).
  defp span(prefix, meta, fun) do
    if function_exported?(:telemetry, :execute, 3) do
      meta = Map.put(meta, :telemetry_span_context, make_ref())
      start = System.monotonic_time()

      :telemetry.execute(
        prefix ++ [:start],
        %{system_time: System.system_time(), monotonic_time: start},
        meta
      )

      try do
        fun.()
      catch
        kind, reason ->
          stop = System.monotonic_time()
          error = %{kind: kind, reason: reason, stacktrace: __STACKTRACE__}

          :telemetry.execute(
            prefix ++ [:exception],
            %{duration: stop - start, monotonic_time: stop},
            Map.merge(meta, error)
          )

          :erlang.raise(kind, reason, __STACKTRACE__)
      else
        result ->
          stop = System.monotonic_time()

          :telemetry.execute(
            prefix ++ [:stop],
            %{duration: stop - start, monotonic_time: stop},
            meta
          )

          result
      end
    else
      fun.()
    end
  end

  # -- the compaction bridge: job events -> spans --

  # The running bridge, started (unlinked: it outlives the caller) if needed.
  defp bridge do
    case GenServer.start(__MODULE__, nil, name: __MODULE__) do
      {:ok, pid} -> pid
      {:error, {:already_started, pid}} -> pid
    end
  end

  @impl true
  def init(nil), do: {:ok, nil}

  @impl true
  def handle_info({:lsm_index, :compaction_started, info}, state) do
    measurements = %{system_time: System.system_time(), monotonic_time: System.monotonic_time()}
    emit(:start, measurements, Map.put(info, :telemetry_span_context, context(info)))
    {:noreply, state}
  end

  def handle_info({:lsm_index, :compaction_done, info}, state) do
    measurements = %{
      duration: native(info.duration_us),
      monotonic_time: System.monotonic_time(),
      keys_flushed: info.keys_flushed,
      keys_written: info.keys_written,
      bytes_written: info.bytes_written
    }

    emit(:stop, measurements, Map.put(info, :telemetry_span_context, context(info)))
    {:noreply, state}
  end

  def handle_info({:lsm_index, :compaction_failed, info}, state) do
    measurements = %{duration: native(info.duration_us), monotonic_time: System.monotonic_time()}
    {reason, message} = failure(info.error)

    meta = %{
      job: info.job,
      lane: info.lane,
      kind: :error,
      reason: %LsmIndex.Error{reason: reason, message: message},
      stacktrace: [],
      telemetry_span_context: context(info)
    }

    emit(:exception, measurements, meta)
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp context(%{job: job}), do: {__MODULE__, job}

  defp native(us), do: System.convert_time_unit(us, :microsecond, :native)

  defp failure({kind, message}) when is_binary(message), do: {kind, message}
  defp failure(kind), do: {kind, inspect(kind)}

  # :telemetry may have been unloaded since the index attached
  defp emit(suffix, measurements, meta) do
    if function_exported?(:telemetry, :execute, 3),
      do: :telemetry.execute(@compaction ++ [suffix], measurements, meta)
  end
end
