// A scripted HTTP server for unit tests: each request is recorded and answered by `answer`,
// which may also destroy the socket to play a dropped connection.
import { createServer } from "node:http";

/**
 * @param {(request: {n: number, method: string, url: string, headers: object, body: string},
 *          res: import("node:http").ServerResponse) => void | Promise<void>} answer
 */
export async function scriptedServer(answer) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const request = {
      n: requests.length + 1,
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    requests.push(request);
    await answer(request, res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

export function json(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export function apiError(res, status, type, code, extra = {}, headers = {}) {
  json(
    res,
    status,
    { error: { type, code, message: `${code} happened`, param: null, request_id: "req_body", ...extra } },
    { "Request-Id": `req_${status}_${code}`, ...headers },
  );
}

export const JOB = {
  id: "job_01",
  object: "job",
  service: "music",
  status: "completed",
  test: true,
  created_at: "2026-11-28T14:00:00.000Z",
  started_at: null,
  completed_at: null,
  progress: 1,
  input: {},
  output: null,
  error: null,
  cost_credits: 0,
};
