/*!
 * cometql.mjs - the CometQL browser library as an ES module.
 *
 *     import CometServer, { cometApi } from "/cometql.mjs";
 *     CometServer().start({dev_id: 1});
 *
 * The implementation lives in cometql.js (one copy of the code); importing it for its
 * side effect defines the global singleton, which this module re-exports.
 */
import "./cometql.js";

var factory = globalThis.CometServer;

/** The page's one client (the same object as window.cometApi). */
export function CometServer() {
    return factory();
}

export var cometApi = factory();
export var internals = factory.internals;
export default CometServer;
