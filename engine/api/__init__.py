"""Hearth's local OpenAI-compatible API: off by default, loopback by default, token always.

`server.ApiServer` is the HTTP side (authentication, limits, CORS, audit); `backend.Backend`
answers with the app's one `ModelRuntime`, the documents service and the bundled embedder;
`protocol` turns OpenAI request bodies into engine requests and engine events into OpenAI
responses.
"""
