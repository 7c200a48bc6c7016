export {};
//# sourceMappingURL=capacity-provider.js.map