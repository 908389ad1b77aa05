# One reading of `mix bench --only filter`'s "cost of a table" (bench/filter.exs runs it in a
# VM of its own per reading: freed memory a VM keeps would be reused by the next reading and
# hide its growth). Prints the VM's RSS growth in bytes once it holds still, after adding
# TABLES tables of K shapes each (`user_id = i`) to a filter of index MODE.
#   mix run bench/table_cost.exs MODE K TABLES
Code.require_file("bench/report.exs")
alias LsmIndex.Bench.Report
alias LsmIndex.Filter

[mode, k, tables] = System.argv()

{mode, k, tables} =
  {String.to_existing_atom(mode), String.to_integer(k), String.to_integer(tables)}

cols = %{"id" => :int8, "user_id" => :int8}
before = Report.stable_memory()

filter =
  Enum.reduce(1..tables, Filter.new(index: mode), fn t, f ->
    Enum.reduce(1..k, f, fn i, f ->
      Filter.add_shape(f, {t, i}, %{table: {"s", "t#{t}"}, columns: cols, where: "user_id = #{i}"})
    end)
  end)

:ok = Filter.wait_idle(filter)
grown = Report.stable_memory().rss - before.rss
# the filter is alive through the reading
^k = Filter.shape_counts(filter, {"s", "t1"}).indexed
IO.puts("RSS_GROWTH #{grown}")
