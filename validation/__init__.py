"""Validation modules run by ``refimpl validate`` (installed as ``refimpl.validation``): one subpackage
per paper, one module per theorem check or figure, each with ``run(ctx) -> list[Claim]``
(:class:`refimpl.core.claims.Claim`), and the runner (``refimpl.validation.runner``)."""
