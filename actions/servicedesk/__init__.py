"""The service desk transports: one module per backend, each with ``open_ticket(content, attempt) ->
Opened``, taking and returning plain values (base.py); ``http`` is their one outbound HTTP seam."""
