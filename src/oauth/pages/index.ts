export { type ConsentClientSource, type ConsentPageOptions, renderConsentPage } from './consent.js';
export { escapeHtml, type HtmlValue, html, rawHtml, SafeHtml } from './html.js';
export {
  formActionSource,
  PAGE_HEADERS,
  type PageHeadersOptions,
  pageHeaders,
  type RenderPageOptions,
  renderPage,
} from './layout.js';
export { type LoginErrorCode, type LoginPageOptions, renderLoginPage } from './login.js';
export { type MessagePageOptions, renderMessagePage } from './message.js';
export { PAGE_CSS, PAGE_CSS_HASH } from './styles.js';
