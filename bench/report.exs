defmodule LsmIndex.Bench.Report do
  @moduledoc "Formatting and progress lines shared by the `mix bench` scripts."

  @doc "A timestamped progress line on stderr (tables go to stdout)."
  def progress(msg),
    do: IO.puts(:stderr, "[#{Time.utc_now() |> Time.truncate(:second)}] #{msg}")

  @doc "`x` with `digits` decimals."
  def fmt_f(x, digits), do: :erlang.float_to_binary(x * 1.0, decimals: digits)

  @doc "An integer with thousands separators."
  def fmt_int(i) when is_integer(i) do
    i
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end
end
