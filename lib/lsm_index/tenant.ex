defmodule LsmIndex.Tenant do
  @moduledoc """
  Maps a tenant id and an index name to the directory of a persistent index under a base
  directory, `<base>/<tenant>/<index>`, and opens it.

  Names are single path components made of ASCII letters, digits, `_`, `-` and `.`, 1 to 255
  bytes, not starting with `.`: so `..`, `/`, `\\`, NUL, absolute paths and hidden names are
  rejected, and no name can reach outside the base. The resolved path is checked to be inside
  the base as well.

  ## Options

    * `:base` - the base directory (default: `config :lsm_index, :data_dir`); required
    * every other option goes to `LsmIndex.open/2`
  """

  @name ~r/\A[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}\z/

  @doc "The directory of `index` of `tenant`, or `{:error, {:invalid_name, message}}`."
  @spec dir(String.t(), String.t(), keyword()) :: {:ok, Path.t()} | {:error, term()}
  def dir(tenant, index, opts \\ []) do
    base = base!(opts)

    with :ok <- valid(tenant, "tenant id"),
         :ok <- valid(index, "index name") do
      root = Path.expand(base)
      path = Path.expand(Path.join([root, tenant, index]))

      if String.starts_with?(path, root <> "/"),
        do: {:ok, path},
        else: {:error, {:invalid_name, "#{inspect(tenant)}/#{inspect(index)} escapes the base"}}
    end
  end

  @doc "Opens (or creates) `index` of `tenant` with `LsmIndex.open/2`."
  @spec open(String.t(), String.t(), keyword()) :: {:ok, LsmIndex.t()} | {:error, term()}
  def open(tenant, index, opts \\ []) do
    with {:ok, path} <- dir(tenant, index, opts) do
      LsmIndex.open(path, Keyword.delete(opts, :base))
    end
  end

  @doc """
  `open/3`, returning the index or raising `LsmIndex.Error` (`reason: :invalid_name` for a
  name that is not a plain directory name, `:locked`, ...).
  """
  @spec open!(String.t(), String.t(), keyword()) :: LsmIndex.t()
  def open!(tenant, index, opts \\ []),
    do: tenant |> open(index, opts) |> LsmIndex.Error.unwrap!()

  defp valid(name, what) when is_binary(name) do
    if Regex.match?(@name, name),
      do: :ok,
      else: {:error, {:invalid_name, "#{what} #{inspect(name)} is not a plain directory name"}}
  end

  defp valid(name, what),
    do: {:error, {:invalid_name, "#{what} must be a string, got: #{inspect(name)}"}}

  defp base!(opts) do
    case Keyword.get_lazy(opts, :base, fn -> Application.get_env(:lsm_index, :data_dir) end) do
      base when is_binary(base) and base != "" ->
        base

      other ->
        raise ArgumentError,
              "a :base directory is required (or config :lsm_index, :data_dir), got: #{inspect(other)}"
    end
  end
end
