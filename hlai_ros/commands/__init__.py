"""The `hlai` subcommands, one module each; what they share."""


def key_values(pairs: list[str], command: str) -> dict:
    """``--set KEY=VALUE`` pairs as a dict of YAML scalars (``0.5``, ``true``, ``[0, 1]``).

    Raises:
        SystemExit: a pair is not KEY=VALUE (named, with `command`).

    """
    import yaml
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise SystemExit(f'{command}: --set takes KEY=VALUE, got {pair!r}')
        out[key.strip()] = yaml.safe_load(value)
    return out
