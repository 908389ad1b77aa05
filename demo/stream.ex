defmodule LsmIndex.Demo.Stream do
  @moduledoc """
  The demo's main loop (`LsmIndex.Demo.Driver` sets it up): the replication stream in,
  transactions routed, the shapes' rows applied and made durable, the durable position
  confirmed, shapes added and removed as it runs. Not public API.

      recv (Replication: CopyData frames; "waiting": for the socket, the reads included)
        ─▶ Pgoutput (whole transactions)                                      ─ "decode"
        ─▶ Routing.route per transaction                                      ─ "route"
        ─▶ hand-offs (Churn: a new shape drops what its snapshot saw)
        ─▶ ShapeLog.apply_ops                                                 ─ "apply"
      after each read that completed a transaction:
        ShapeLog.commit (one frame, fdatasync) ─▶ status update, flush = that LSN  ─ "durable"
      between reads, when due: Churn.step (snapshots, shapes added and removed)  ─ "churn"

  A read takes what the socket has (up to 4 MiB), and a routed transaction waits up to 5 ms
  for the next reads' (group commit), so under load one frame and one fsync cover many
  transactions; when the stream pauses, what was routed is made durable at once. The
  stream ends when the writer is done and the end marker (a transactional logical message
  the driver emits after the writer's last commit) has been routed.
  """

  alias LsmIndex.Demo.{Churn, Pgoutput, Replication, Routing, ShapeLog, Slot}

  # transactions kept for a new shape's hand-off (see LsmIndex.Demo.Snapshot)
  @ring 1_000
  # how long a routed transaction waits for others to share its frame (group commit)
  @group_ms 5

  @doc "Consumes the stream until the end marker; returns the run's statistics."
  @spec run(map()) :: map()
  def run(state) do
    now = System.monotonic_time(:millisecond)
    # the decoder's event lists and the routed ops are short-lived garbage: a big young heap
    # saves most of the collections (the caller's process, the demo's: set back at the end)
    heap = Process.flag(:min_heap_size, 4_000_000)

    state
    |> Map.merge(%{
      decoder: Pgoutput.new(),
      done: false,
      marker: nil,
      finished: nil,
      written: 0,
      txns: 0,
      changes: 0,
      truncates: 0,
      route_ns: [],
      per_change_ns: [],
      route_total: 0,
      split: %{wait: 0, decode: 0, route: 0, apply: 0, durable: 0, churn: 0},
      reads: 0,
      commits: 0,
      ops: 0,
      ring: {[], 0, nil},
      last_lsn: 0,
      confirmed_at: now,
      dirty: nil,
      started: now,
      last: {now, 0, 0}
    })
    |> loop()
    |> tap(fn _ -> Process.flag(:min_heap_size, heap) end)
  end

  defp loop(%{finished: at, dirty: nil} = state) when at != nil, do: progress(state, true)

  # `--backlog`: the stream is read only once the writer is done (the slot holds the WAL), to
  # measure the pipeline draining a backlog, as a service does after a restart
  defp loop(%{done: false, config: %{backlog: true}} = state) do
    receive do
      {:workload, :done, n} -> loop(%{state | written: n, done: true, started: now()})
      {:workload, :progress, n} -> loop(%{state | written: n})
    end
  end

  defp loop(state) do
    state = state |> mailbox() |> end_marker()
    t0 = System.monotonic_time()
    {messages, conn} = Replication.recv(state.conn, recv_timeout(state))
    state = split(state, :wait, t0)
    t0 = System.monotonic_time()
    {txns, decoder} = Pgoutput.feed(state.decoder, messages)
    state = %{state | conn: conn, decoder: decoder, reads: state.reads + 1}
    state = split(state, :decode, t0)
    state = Enum.reduce(txns, state, &transaction/2)
    state = if txns != [] and state.dirty == nil, do: %{state | dirty: now()}, else: state
    state = if due?(state, messages), do: durable(state), else: state

    state =
      if state.dirty == nil,
        do: messages |> Enum.reduce(state, &keepalive/2) |> Churn.step(),
        else: state

    loop(progress(state, false))
  end

  # Group commit: the routed transactions wait up to @group_ms for others to share their
  # frame and fsync, unless the stream has nothing more for now or has ended.
  defp due?(%{dirty: nil}, _messages), do: false
  defp due?(%{finished: at}, _messages) when at != nil, do: true
  defp due?(_state, []), do: true
  defp due?(%{dirty: since}, _messages), do: now() - since >= @group_ms

  defp recv_timeout(%{dirty: nil}), do: 100
  defp recv_timeout(%{dirty: since}), do: max(0, @group_ms - (now() - since))

  defp now, do: System.monotonic_time(:millisecond)

  # a transaction at or before the durable position (sent again after a server crash)
  defp transaction({_xid, lsn, _events}, %{log: %{lsn: durable}} = state) when lsn <= durable,
    do: state

  defp transaction({xid, lsn, events}, state) do
    {changes, state} = Enum.flat_map_reduce(events, state, &event/2)
    t0 = System.monotonic_time()
    {ops, route_t} = Routing.route(state.routing, changes)
    t1 = System.monotonic_time()
    ops = Churn.hand_off(state.churn, xid, lsn, ops)
    log = ShapeLog.queue_routed(state.log, ops)
    t2 = System.monotonic_time()
    n = length(changes)
    route_ns = System.convert_time_unit(route_t, :native, :nanosecond)

    %{
      state
      | log: log,
        churn: Churn.passed(state.churn, lsn),
        ring: ring(state.ring, {xid, lsn, changes}),
        split: %{
          state.split
          | route: state.split.route + t1 - t0,
            apply: state.split.apply + t2 - t1
        },
        last_lsn: lsn,
        ops: state.ops + length(ops),
        txns: state.txns + 1,
        changes: state.changes + n,
        truncates: state.truncates + Enum.count(changes, &match?({:truncate, _}, &1)),
        route_ns: if(n > 0, do: [route_ns | state.route_ns], else: state.route_ns),
        per_change_ns:
          if(n > 0, do: [div(route_ns, n) | state.per_change_ns], else: state.per_change_ns),
        route_total: state.route_total + route_ns
    }
  end

  # a transaction's events: its changes; a relation's columns learned; the end marker seen
  defp event({:relation, table, columns}, state),
    do: {[], %{state | routing: Routing.learn(state.routing, table, columns)}}

  defp event({:message, "lsm_demo_end", _content}, state),
    do: {[], %{state | finished: System.monotonic_time(:millisecond)}}

  defp event({:message, _prefix, _content}, state), do: {[], state}
  defp event(change, state), do: {[change], state}

  # The recent transactions a new shape may have to be routed again (newest first), how
  # many, and the largest xid of those dropped.
  defp ring({txns, n, evicted}, txn) when n < 2 * @ring, do: {[txn | txns], n + 1, evicted}

  defp ring({txns, _n, evicted}, txn) do
    {kept, dropped} = Enum.split([txn | txns], @ring)
    max = dropped |> Enum.map(&elem(&1, 0)) |> Enum.max()
    {kept, @ring, if(evicted, do: max(evicted, max), else: max)}
  end

  # one frame for everything the read brought, then the confirmation
  defp durable(state) do
    t0 = System.monotonic_time()
    log = ShapeLog.commit(state.log, state.last_lsn)
    crash_point(state.config.halt_before_confirm, state.commits + 1)
    :ok = Replication.status_update(state.conn, log.lsn, log.lsn, log.lsn)
    split(%{state | log: log, commits: state.commits + 1, dirty: nil}, :durable, t0)
  end

  # A keepalive's WAL end: every transaction ending at or before it has arrived (the stream
  # is in order), so once none is open and the read's frame is durable, the log may stand at
  # it — pgoutput sends no transaction that touches no published table, and the slot would
  # otherwise never pass that WAL. Recorded as a frame first (at most once a second, or when
  # the server asks), so the slot is never confirmed past the log.
  defp keepalive({:keepalive, wal_end, _time, reply?}, %{log: log} = state) do
    now = System.monotonic_time(:millisecond)
    idle = not Pgoutput.open_transaction?(state.decoder) and log.pending == []

    cond do
      idle and wal_end > log.lsn and (reply? or now - state.confirmed_at >= 1_000) ->
        t0 = System.monotonic_time()
        log = ShapeLog.commit(log, wal_end)
        :ok = Replication.status_update(state.conn, wal_end, wal_end, wal_end)
        split(%{state | log: log, confirmed_at: now}, :durable, t0)

      reply? ->
        :ok = Replication.status_update(state.conn, log.lsn, log.lsn, log.lsn)
        state

      true ->
        state
    end
  end

  defp keepalive(_message, state), do: state

  # `--halt-before-confirm N` (tests): the VM kills itself between the N-th durable frame of
  # this run and its confirmation, the window where the slot is behind the log
  defp crash_point(n, n) do
    IO.puts("halting between a durable frame and the slot's confirmation (crash point)")
    System.cmd("kill", ["-KILL", System.pid()])
    Process.sleep(:infinity)
  end

  defp crash_point(_n, _commits), do: :ok

  defp mailbox(state) do
    receive do
      {:workload, :progress, n} -> mailbox(%{state | written: n})
      {:workload, :done, n} -> mailbox(%{state | written: n, done: true})
    after
      0 -> state
    end
  end

  # once the writer is done: a transactional message after its last commit, whose arrival
  # ends the stream
  defp end_marker(%{done: true, marker: nil} = state) do
    [lsn] =
      LsmIndex.Demo.Psql.run(
        state.session,
        "SELECT pg_logical_emit_message(true, 'lsm_demo_end', '');"
      )

    %{state | marker: Slot.parse_lsn(lsn)}
  end

  defp end_marker(state), do: state

  defp split(state, part, t0),
    do: %{state | split: Map.update!(state.split, part, &(&1 + System.monotonic_time() - t0))}

  defp progress(state, final) do
    now = System.monotonic_time(:millisecond)
    {at, txns0, changes0} = state.last

    if final or now - at >= state.config.progress_ms do
      secs = max(now - at, 1) / 1000

      IO.puts(
        "[#{:erlang.float_to_binary((now - state.started) / 1000, decimals: 1)}s] " <>
          "written #{fmt(state.written)} txns | routed #{fmt(state.txns)} txns, " <>
          "#{fmt(state.changes)} changes | #{fmt(round((state.txns - txns0) / secs))} txn/s, " <>
          "#{fmt(round((state.changes - changes0) / secs))} changes/s | " <>
          "#{Churn.summary(state.churn)} | durable #{Slot.format_lsn(state.log.lsn)}"
      )

      %{state | last: {now, state.txns, state.changes}}
    else
      state
    end
  end

  @doc "`n` with thousands separators."
  @spec fmt(integer()) :: String.t()
  def fmt(n) when is_integer(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end
end
