defmodule LsmIndex.Bench.Plot do
  @moduledoc """
  The one place the `mix bench` scripts draw with gnuplot: SVG files beside their results.

    * `svg/2` runs a gnuplot script (the terminal and output lines are set here: SVG,
      1000x560, white background) — the memory soak's plot of its CSV series uses it directly
    * `lines/2` draws the common chart: a few series of (x, y) points, one line each, with
      the data inline (no file beside the SVG); the filter and router-scale sections and the
      section plots of `bench/plots.exs` use it
    * `link/3` is what a results file says about a plot: the image, or the note of why there
      is none

  When gnuplot is missing the bench installs Debian's `gnuplot-nox` through `apt-get` when it
  runs as root; when that cannot be done, or gnuplot fails, there is no plot and a note says
  why (`{:error, note}`): a bench run never fails for want of a plot.
  """

  import LsmIndex.Bench.Report, only: [progress: 1, fmt_f: 2]

  @doc """
  Draws `svg` with gnuplot from `script` (its commands after the terminal and output lines).
  `:ok`, or `{:error, note}` when there is no plot (see the module doc).
  """
  def svg(svg, script) do
    with {:ok, gnuplot} <- gnuplot() do
      file = Path.join(System.tmp_dir!(), "lsm_bench_#{System.unique_integer([:positive])}.gp")

      File.write!(file, """
      set terminal svg size 1000,560 dynamic enhanced font "sans,12" background rgb "white"
      set output "#{svg}"
      #{script}
      """)

      {out, status} = System.cmd(gnuplot, [file], stderr_to_stdout: true)
      File.rm(file)

      if status == 0 and File.exists?(svg),
        do: :ok,
        else: {:error, "plot skipped: gnuplot failed (exit #{status}): #{String.trim(out)}"}
    end
  end

  @doc """
  Draws `svg`: one line per series over a shared x axis. Options:

    * `:series` - `[{title, [{x, y}]}]` or `{title, points, opts}` with `dashed: true`;
      a `nil` y is a gap; series with no point are left out
    * `:title`, `:xlabel`, `:ylabel` - text (UTF-8, taken literally)
    * `:log` - `"x"`, `"y"` or `"xy"`: log scales (default none; a linear y starts at 0)
    * `:xtics` - `:counts` (one tic per x, labelled `1k`, `10M`, ...), a list of
      `{label, x}`, or `nil` (gnuplot's own, the default)

  `:ok` or `{:error, note}` as `svg/2`.
  """
  def lines(svg, opts) do
    series =
      for s <- Keyword.fetch!(opts, :series),
          {title, points, style} = normalize(s),
          Enum.any?(points, fn {_x, y} -> y != nil end),
          do: {title, points, style}

    if series == [] do
      {:error, "plot skipped: nothing to plot"}
    else
      svg(svg, lines_script(series, opts))
    end
  end

  defp normalize({title, points}), do: {title, points, []}
  defp normalize({title, points, style}), do: {title, points, style}

  defp lines_script(series, opts) do
    xs = series |> Enum.flat_map(fn {_, points, _} -> Enum.map(points, &elem(&1, 0)) end)
    xs = xs |> Enum.uniq() |> Enum.sort()

    # one row per x, one column per series (NaN: no point there)
    data =
      Enum.map_join(xs, "\n", fn x ->
        cells = for {_, points, _} <- series, do: value(List.keyfind(points, x, 0))
        Enum.join([number(x) | cells], " ")
      end)

    plots =
      series
      |> Enum.with_index(2)
      |> Enum.map_join(", \\\n     ", fn {{title, _, style}, col} ->
        dash = if style[:dashed], do: " dt 2", else: ""

        ~s($data using 1:#{col} with linespoints lw 2 pt 7#{dash} title "#{escape(title)}")
      end)

    log = opts[:log]

    """
    $data << EOD
    #{data}
    EOD
    set encoding utf8
    set title "#{escape(opts[:title] || "")}" noenhanced
    set xlabel "#{escape(opts[:xlabel] || "")}" noenhanced
    set ylabel "#{escape(opts[:ylabel] || "")}" noenhanced
    #{if log, do: "set logscale #{log}", else: ""}
    #{if log in ["y", "xy"], do: "", else: "set yrange [0:*]"}
    set offsets graph 0.05, graph 0.05, graph 0.05, 0
    set autoscale xfix
    #{xtics(opts[:xtics], xs)}
    set grid
    set key below noenhanced
    set datafile missing "NaN"
    plot #{plots}
    """
  end

  defp value(nil), do: "NaN"
  defp value({_x, nil}), do: "NaN"
  defp value({_x, y}), do: number(y)

  defp number(n) when is_integer(n), do: Integer.to_string(n)
  defp number(f) when is_float(f), do: fmt_f(f, 6)

  defp xtics(nil, _xs), do: ""
  defp xtics(:counts, xs), do: xtics(Enum.map(xs, &{count(&1), &1}), xs)

  defp xtics(labelled, _xs),
    do:
      "set xtics (#{Enum.map_join(labelled, ", ", fn {l, x} -> ~s("#{escape(l)}" #{number(x)}) end)})"

  @doc "A count as a short tic label: `1k`, `100k`, `10M`, `1500`."
  def count(n) when rem(n, 1_000_000) == 0 and n > 0, do: "#{div(n, 1_000_000)}M"
  def count(n) when rem(n, 1_000) == 0 and n > 0, do: "#{div(n, 1_000)}k"
  def count(n), do: "#{n}"

  defp escape(text), do: text |> to_string() |> String.replace(~S("), ~S(\"))

  @doc """
  What a results file says of `result` (`svg/2`'s or `lines/2`'s) for the plot `svg` (its
  path: linked by its file name, the results being beside it): the image with `alt` text,
  or the note of why there is none (also printed).
  """
  def link(:ok, alt, svg), do: "![#{alt}](#{Path.basename(svg)})\n"

  def link({:error, note}, _alt, _svg) do
    progress(note)
    "(#{note})\n"
  end

  # -- gnuplot, installed when missing and possible --

  # Looked for (and installed) once per VM: a run's later plots do not try again.
  defp gnuplot do
    case :persistent_term.get({__MODULE__, :gnuplot}, nil) do
      nil ->
        found =
          case System.find_executable("gnuplot") do
            nil -> install_gnuplot()
            exe -> {:ok, exe}
          end

        :persistent_term.put({__MODULE__, :gnuplot}, found)
        found

      found ->
        found
    end
  end

  # Debian's gnuplot-nox, when running as root with apt-get; otherwise a note.
  defp install_gnuplot do
    apt = System.find_executable("apt-get")

    cond do
      apt == nil ->
        {:error, "plot skipped: gnuplot is not installed and there is no apt-get"}

      not root?() ->
        {:error, "plot skipped: gnuplot is not installed (as root: apt-get install gnuplot-nox)"}

      true ->
        progress("gnuplot is missing: apt-get install gnuplot-nox")
        install = ["-q", "-y", "install", "gnuplot-nox"]

        {out, ok} =
          with {_, false} <- apt_get(apt, install),
               {_, true} <- apt_get(apt, ["-q", "update"]) do
            apt_get(apt, install)
          end

        case {ok, System.find_executable("gnuplot")} do
          {true, exe} when exe != nil ->
            {:ok, exe}

          _ ->
            last = out |> String.trim() |> String.split("\n") |> List.last()

            {:error,
             "plot skipped: gnuplot is missing and apt-get could not install it (#{last})"}
        end
    end
  end

  defp apt_get(apt, args) do
    {out, status} =
      System.cmd(apt, ["-o", "Acquire::Retries=0", "-o", "Acquire::http::Timeout=20" | args],
        env: [{"DEBIAN_FRONTEND", "noninteractive"}],
        stderr_to_stdout: true
      )

    {out, status == 0}
  rescue
    e -> {Exception.message(e), false}
  end

  defp root? do
    case Regex.run(~r/^Uid:\s+\d+\s+(\d+)/m, File.read!("/proc/self/status")) do
      [_, "0"] -> true
      _ -> false
    end
  end
end
