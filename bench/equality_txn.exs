defmodule LsmIndex.Bench.EqualityTxn do
  @moduledoc """
  `mix bench` (equality section): transaction lookups per key, the list form beside the
  packed one (issue 25 step 3), each in ns per key and as a multiple of the ETS `:set` hit of
  the same table (its `hit p50 ns`, same keys, same run). Rows, per LSM structure:

    * `lookup_many/2` - a list of keys
    * `pack_keys/1 + lookup_many_packed/2` - the same list packed by the call (what a caller
      holding a list pays)
    * `lookup_many_packed/2, packed before` - a binary packed beforehand (a batch reused, or
      built as bytes where the keys are made): the NIF reads the keys in place
    * `LsmEqualityIndex.candidates_many/2` - the `:lsm` equality index's transaction lookup
      (shapes and residuals per key)

  Transactions of 10, 100 and 256 keys (random hits); p50 of the transaction's time divided
  by its keys.
  """

  import LsmIndex.Bench.Report, only: [fmt_f: 2, markdown: 2]

  alias LsmIndex.Filter.LsmEqualityIndex

  @sizes [10, 100, 256]

  @doc """
  Per-key p50 ns of each form for an index (`:lsm_raw`) or an `LsmEqualityIndex`
  (`:lsm_eq`) over keys `key.(0..n-1)`: `[{row label, %{size => ns}}]`.
  """
  def measure(kind, s, n, key, count) do
    for {label, fun, packed?} <- forms(kind, s) do
      {label, Map.new(@sizes, &{&1, per_key(fun, packed?, n, key, &1, count)})}
    end
  end

  defp forms(:lsm_raw, idx) do
    [
      {"lookup_many/2", &LsmIndex.lookup_many(idx, &1), false},
      {"pack_keys/1 + lookup_many_packed/2",
       &LsmIndex.lookup_many_packed(idx, LsmIndex.pack_keys(&1)), false},
      {"lookup_many_packed/2, packed before", &LsmIndex.lookup_many_packed(idx, &1), true}
    ]
  end

  defp forms(:lsm_eq, idx),
    do: [
      {"LsmEqualityIndex.candidates_many/2", &LsmEqualityIndex.candidates_many(idx, &1), false}
    ]

  defp forms(_kind, _s), do: []

  defp per_key(fun, packed?, n, key, size, count) do
    txns = for _ <- 1..count, do: for(_ <- 1..size, do: key.(:rand.uniform(n) - 1))
    txns = if packed?, do: Enum.map(txns, &LsmIndex.pack_keys/1), else: txns

    times =
      for keys <- txns do
        t0 = :erlang.monotonic_time()
        fun.(keys)
        :erlang.convert_time_unit(:erlang.monotonic_time() - t0, :native, :nanosecond)
      end

    sorted = Enum.sort(times)
    Enum.at(sorted, min(round(0.5 * length(sorted)), length(sorted) - 1)) / size
  end

  @doc "The table: one line per `{structure name, measure/5's rows}`, against `ets_hit` ns."
  def table(structures, ets_hit) do
    columns =
      ["structure", "form"] ++
        Enum.flat_map(@sizes, &["txn#{&1} ns/key", "× ETS"])

    lines =
      for {name, rows} <- structures, {label, by_size} <- rows do
        [name, label] ++
          Enum.flat_map(@sizes, fn size ->
            ns = by_size[size]
            [fmt_f(ns, 0), fmt_f(ns / ets_hit, 2)]
          end)
      end

    "Transactions per key (p50 ns / key; × the ETS `:set` hit of this table, " <>
      "#{fmt_f(ets_hit, 0)} ns):\n\n" <> markdown(columns, lines)
  end
end
