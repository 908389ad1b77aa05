defmodule LsmIndex.Bench.Plots do
  @moduledoc """
  A plot per `mix bench` section, drawn from the tables of its results markdown (so any
  results file, a committed one too, can be plotted again: `mix bench --replot`), into SVGs
  beside it named after it (`<results>.svg`, `<results>-batch.svg`; `-quick` runs are
  `<section>-quick.svg`, ...):

    * `equality` - lookup hit p50 against keys, one line per structure (one shape per key):
      `equality.svg`; keys looked up per second against keys per call (1: `lookup`; 10 and
      100: a transaction, `lookup_many/2` for the LSM rows) at the largest size:
      `equality-batch.svg`
    * `compaction` - lookup latency by percentile, compaction idle vs running:
      `compaction.svg` (`compaction-persistent.svg`)
    * `router` - route hit p50 against shapes, one line per structure (dashed: the realistic
      mix): `router.svg`; changes routed per second against changes per call (1: `route/2`;
      a transaction: `route_many/2`) at the largest size, 1% (10%: dashed) matching changes:
      `router-batch.svg`
    * `subquery` - outer routes: changes per second against changes per call (`route/2`,
      `route_many/2` transactions), one line per template: `subquery.svg`
    * `router_scale`, `filter`, `memory` - these sections draw their own plot
      (`router-scale.svg`, `filter.svg`, `memory.svg`), nothing here

  `section/3` returns the lines a results file gets for its plots: the image, or the note of
  why there is none (`LsmIndex.Bench.Plot.link/3`). A table a run did not produce (an
  `--only` section, a missing column) is simply not plotted.
  """

  alias LsmIndex.Bench.Plot

  @doc """
  Draws `section`'s plots beside `results` (the results' path without extension) from its
  `markdown`; returns the markdown to append naming them, after a blank line ("" when the
  section draws its own).
  """
  def section(section, results, markdown) do
    tables = tables(markdown)

    plots =
      case section do
        :equality -> [equality_latency(results, tables), equality_batch(results, tables)]
        :compaction -> [compaction(results, markdown, tables)]
        :router -> [router_latency(results, tables), router_batch(results, tables)]
        :subquery -> [subquery(results, tables)]
        _ -> []
      end

    # (a note of why there is no plot is said once)
    case Enum.uniq(for {svg, alt, result} <- plots, do: Plot.link(result, alt, svg)) do
      [] -> ""
      links -> Enum.join(["" | links], "\n")
    end
  end

  # -- equality: latency against keys, throughput against keys per call --

  defp equality_latency(results, tables) do
    sized = sized(tables, ~r/^## ([\d,]+) keys, (\w+)/)
    workload = sized |> Enum.map(&elem(&1, 1)) |> Enum.find(&(&1 == "single"))
    sized = for {n, w, t} <- sized, w == workload, do: {n, t}

    draw(results <> ".svg", "lookup hit p50 against keys",
      title: "Equality indexes: one lookup, hit p50 (one shape per key)",
      xlabel: "keys",
      ylabel: "ns per lookup (p50)",
      log: "x",
      xtics: :counts,
      series: by_structure(sized, fn row, t -> cell(t, row, "hit p50 ns") end)
    )
  end

  defp equality_batch(results, tables) do
    case sized(tables, ~r/^## ([\d,]+) keys, single/) |> List.last() do
      nil ->
        nil

      {n, _, t} ->
        # txn10 µs, txn100 µs: p50 µs per transaction of that many keys
        batches =
          for c <- t.columns,
              [_, k] <- [Regex.run(~r/^txn(\d+) µs$/, c)],
              do: {String.to_integer(k), c}

        series =
          for row <- t.rows do
            one = {1, per_second(1, cell(t, row, "hit p50 ns"), 1.0e3)}
            many = for {k, c} <- batches, do: {k, per_second(k, cell(t, row, c), 1)}
            {hd(row), [one | many]}
          end

        draw(results <> "-batch.svg", "keys looked up per second against keys per call",
          title: "Equality indexes at #{Plot.count(n)} keys: lookups per second by batch",
          xlabel:
            "keys per call (1: one lookup; 10, 100: a transaction, lookup_many/2 for LsmIndex)",
          ylabel: "M keys per second (p50)",
          log: "x",
          xtics: Enum.map([{1, nil} | batches], fn {k, _} -> {"#{k}", k} end),
          series: series
        )
    end
  end

  # -- compaction: lookup percentiles, idle vs running --

  defp compaction(results, markdown, tables) do
    case Enum.find(tables, &String.starts_with?(hd(&1.columns), "lookups")) do
      nil ->
        nil

      t ->
        percentiles =
          t.columns
          |> Enum.drop(1)
          |> Enum.filter(&String.ends_with?(&1, " ns"))
          |> Enum.with_index(1)

        keys =
          case Regex.run(~r/N = ([\d,]+) keys/, markdown) do
            [_, n] -> " at #{Plot.count(int(n))} keys"
            nil -> ""
          end

        series =
          for row <- t.rows, String.starts_with?(hd(row), "compaction") do
            {hd(row), for({c, x} <- percentiles, do: {x, cell(t, row, c)})}
          end

        draw(results <> ".svg", "lookup latency by percentile, compaction idle vs running",
          title: "One lookup#{keys}: compaction idle vs running",
          xlabel: "percentile",
          ylabel: "ns per lookup",
          log: "y",
          xtics: for({c, x} <- percentiles, do: {String.trim_trailing(c, " ns"), x}),
          series: series
        )
    end
  end

  # -- router: latency against shapes, throughput against changes per call --

  defp router_latency(results, tables) do
    sized = sized(tables, ~r/^## ([\d,]+) shapes(, realistic mix)?/)

    series =
      for {mix, dashed} <- [{"", false}, {", realistic mix", true}],
          of_mix = for({n, m, t} <- sized, m == mix, do: {n, t}),
          {name, points} <- by_structure(of_mix, fn row, t -> cell(t, row, "hit p50/p99 ns") end),
          do: {name <> mix, points, dashed: dashed}

    draw(results <> ".svg", "route hit p50 against shapes",
      title: "ShapeRouter vs Filter :map: one route, hit p50",
      xlabel: "shapes",
      ylabel: "ns per route (p50)",
      log: "x",
      xtics: :counts,
      series: series
    )
  end

  defp router_batch(results, tables) do
    case for({n, "", t} <- sized(tables, ~r/^## ([\d,]+) shapes(, realistic mix)?/), do: {n, t})
         |> List.last() do
      nil ->
        nil

      {n, t} ->
        txn = txn_size(LsmIndex.Bench.Router, 100)

        series =
          for pct <- ["1%", "10%"], row <- t.rows do
            points = [
              {1, per_million(cell(t, row, "#{pct} route/s"))},
              {txn, per_million(cell(t, row, "#{pct} route_many/s"))}
            ]

            {"#{hd(row)}, #{pct} matching", points, dashed: pct == "10%"}
          end

        draw(results <> "-batch.svg", "changes routed per second against changes per call",
          title: "Routes at #{Plot.count(n)} shapes: changes per second by call",
          xlabel: "changes per call (1: route/2; #{txn}: route_many/2, a transaction)",
          ylabel: "M changes per second",
          log: "x",
          xtics: [{"1", 1}, {"#{txn}", txn}],
          series: series
        )
    end
  end

  # -- subquery: outer routes, throughput against changes per call --

  defp subquery(results, tables) do
    case Enum.find(tables, &("route/2 p50 / p99 µs" in &1.columns)) do
      nil ->
        nil

      t ->
        txn = txn_size(LsmIndex.Bench.Subquery, 10)

        series =
          for row <- t.rows do
            points = [
              {1, per_second(1, cell(t, row, "route/2 p50 / p99 µs"), 1.0e3)},
              {txn, per_second(txn, cell(t, row, "txn p50 / p99 µs"), 1.0e3)}
            ]

            {hd(row), points}
          end

        draw(results <> ".svg", "outer routes: changes per second against changes per call",
          title: "Subquery shapes, outer routes: changes per second by call (p50)",
          xlabel: "changes per call (1: route/2; #{txn}: route_many/2, a transaction)",
          ylabel: "k changes per second",
          log: "x",
          xtics: [{"1", 1}, {"#{txn}", txn}],
          series: series
        )
    end
  end

  # -- helpers --

  defp draw(svg, alt, opts), do: {svg, alt, Plot.lines(svg, opts)}

  # [{n, group, table}] of the tables whose heading `regex` matches: n its first capture, a
  # count; group its second ("" when absent).
  defp sized(tables, regex) do
    for t <- tables,
        [_, n | rest] <- [Regex.run(regex, t.heading)],
        do: {int(n), List.first(rest, ""), t}
  end

  # One series per structure (a row's first cell) over `[{n, table}]`, y = fun.(row, table).
  defp by_structure(sized, fun) do
    names = sized |> Enum.flat_map(fn {_n, t} -> Enum.map(t.rows, &hd/1) end) |> Enum.uniq()

    for name <- names do
      points =
        for {n, t} <- sized,
            row = Enum.find(t.rows, &(hd(&1) == name)),
            row != nil,
            do: {n, fun.(row, t)}

      {name, points}
    end
  end

  # Items per second from the time of one call of `k` items: in millions from µs (`scale`
  # 1) or from ns (`scale` 1.0e3), in thousands from µs (`scale` 1.0e3).
  defp per_second(_k, nil, _scale), do: nil
  defp per_second(k, us, scale), do: k * scale / max(us, 1.0e-9)

  defp per_million(nil), do: nil
  defp per_million(per_s), do: per_s / 1.0e6

  defp txn_size(module, default) do
    if Code.ensure_loaded?(module) and function_exported?(module, :txn_size, 0),
      do: module.txn_size(),
      else: default
  end

  @doc """
  The markdown tables of `markdown`: `%{heading, columns, rows}`, `heading` the last line
  starting with `#` before the table, `rows` lists of cells (trimmed text).
  """
  def tables(markdown) do
    markdown
    |> String.split("\n")
    |> Enum.reduce({"", nil, []}, fn line, {heading, open, done} ->
      line = String.trim(line)

      cond do
        String.starts_with?(line, "#") ->
          {line, nil, close(open, done)}

        not String.starts_with?(line, "|") ->
          {heading, nil, close(open, done)}

        open == nil ->
          {heading, %{heading: heading, columns: cells(line), rows: []}, done}

        String.starts_with?(line, "|-") or String.starts_with?(line, "|:") ->
          {heading, open, done}

        true ->
          {heading, %{open | rows: [cells(line) | open.rows]}, done}
      end
    end)
    |> then(fn {_, open, done} -> close(open, done) end)
    |> Enum.reverse()
  end

  defp close(nil, done), do: done
  defp close(open, done), do: [%{open | rows: Enum.reverse(open.rows)} | done]

  defp cells(line) do
    line |> String.trim("|") |> String.split("|") |> Enum.map(&String.trim/1)
  end

  # The first number of the cell of `row` under `column`, nil when there is none.
  defp cell(t, row, column) do
    with i when i != nil <- Enum.find_index(t.columns, &(&1 == column)),
         text when is_binary(text) <- Enum.at(row, i),
         [n] <- Regex.run(~r/-?\d[\d,]*(\.\d+)?/, text, capture: :first) do
      n |> String.replace(",", "") |> Float.parse() |> elem(0)
    else
      _ -> nil
    end
  end

  defp int(text), do: text |> String.replace(",", "") |> String.to_integer()
end
